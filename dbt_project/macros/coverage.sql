{#-
    Coverage in the daily marts (agg_daily_source_coverage): a source's figures are null,
    never 0, on a day that source is missing or refused.
-#}

{#- The day's status of a source, from the model's `coverage` CTE (one column per source,
    `<source>_status`); a day outside the coverage's range is missing. -#}
{% macro coverage_status(source) -%}
    coalesce(coverage.{{ source }}_status, 'missing')
{%- endmacro %}

{#- A count of a source: 0 when nothing happened, null when the source's data of the day
    is missing or refused. -#}
{% macro unless_missing(source, expression) -%}
    case
        when {{ coverage_status(source) }} not in ('missing', 'refused')
            then coalesce({{ expression }}, 0)
    end
{%- endmacro %}
