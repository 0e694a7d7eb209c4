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
