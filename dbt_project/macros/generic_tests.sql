{#-
    Generic data tests of this project (dbt_utils is not available here).
-#}

{#- Fails for every combination of the given columns that occurs more than once. -#}
{% test unique_combination_of_columns(model, combination_of_columns) %}

with

grouped as (

    select
        {{ combination_of_columns | join(', ') }},
        count(*) as occurrences

    from {{ model }}
    group by {{ combination_of_columns | join(', ') }}

)

select * from grouped
where occurrences > 1

{% endtest %}

{#- Fails for every row where the boolean SQL expression is not true (null fails too). -#}
{% test expression_is_true(model, expression) %}

select * from {{ model }}
where not coalesce(({{ expression }}), false)

{% endtest %}

{#-
    Fails for each of the given columns that holds nulls (one row per such column, with
    its number of null rows): not_null for several columns in one scan of the model, so a
    build pays one query per model instead of one per column.
-#}
{% test not_null_columns(model, column_names) %}

with

null_counts as (

    select
        {%- for column in column_names %}
            count(*) filter (where {{ column }} is null) as {{ adapter.quote(column) }}
            {{- "," if not loop.last }}
        {%- endfor %}

    from {{ model }}

),

unpivoted as (

    {{ unpivot_columns('null_counts', column_names, 'column_name', 'null_rows') }}

)

select * from unpivoted
where null_rows > 0

{% endtest %}
