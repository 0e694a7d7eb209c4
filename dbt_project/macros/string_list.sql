{#- Render a list of strings (e.g. a var; a comma-separated string also works) as lowercased,
    quoted SQL literals: 'a', 'b'.
    An empty list renders as null so that `x in (...)` stays valid and matches nothing. -#}
{% macro lowercase_string_list(values) -%}
    {%- if values is string -%}{%- set values = values.split(',') | reject('equalto', '') | list -%}{%- endif -%}
    {%- if values | length == 0 -%}
        null
    {%- else -%}
        {%- for value in values -%}
            '{{ value | string | trim | lower | replace("'", "''") }}'{{ ', ' if not loop.last }}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}
