{#-
    Seeds on Spark. dbt-spark's session connection puts a seed's values into its insert as
    '<value>' without escaping them (a quote in a value breaks the statement: "The company's
    own website"; a missing value becomes 'None'), so the spark target loads seeds with SQL
    literals of their own: the same insert, its values escaped here.
-#}

{#- dbt-spark's spark__load_csv_rows, with the values as escaped literals instead of bindings. -#}
{% macro spark__load_csv_rows(model, agate_table) %}
    {%- set column_override = model['config'].get('column_types', {}) -%}
    {%- set statements = [] -%}
    {%- for chunk in agate_table.rows | batch(get_batch_size()) -%}
        {%- set sql -%}
            insert into {{ this.render() }} values
            {% for row in chunk -%}
                ({%- for col_name in agate_table.column_names -%}
                    {%- set inferred_type = adapter.convert_type(agate_table, loop.index0) -%}
                    cast({{ spark_seed_literal(row[loop.index0]) }} as {{ column_override.get(col_name, inferred_type) }})
                    {%- if not loop.last %}, {% endif -%}
                {%- endfor -%})
                {%- if not loop.last %},
            {% endif -%}
            {%- endfor %}
        {%- endset -%}
        {%- do adapter.add_query(sql, abridge_sql_log=True) -%}
        {%- if loop.first -%}{%- do statements.append(sql) -%}{%- endif -%}
    {%- endfor -%}
    {{ return(statements[0]) }}
{% endmacro %}

{#- A seed's value as a Spark SQL literal: null, true, false, a number, or an escaped string. -#}
{% macro spark_seed_literal(value) -%}
    {%- if value is none -%}
        null
    {%- elif value is sameas true -%}
        true
    {%- elif value is sameas false -%}
        false
    {%- elif value is number -%}
        {{ value }}
    {%- else -%}
        '{{ value | string | replace('\\', '\\\\') | replace("'", "\\'") }}'
    {%- endif -%}
{%- endmacro %}
