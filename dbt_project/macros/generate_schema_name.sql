{#-
    Use the custom schema name as is: `+schema: marts` builds into schema `marts`
    (dbt's default would be `<target schema>_marts`). Models without a custom schema
    go to the target schema.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
