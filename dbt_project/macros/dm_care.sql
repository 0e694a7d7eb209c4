{#- The DM care figures every mart adds up, defined once (see docs/care.md). -#}

{#- the DM request counts: columns `<prefix>dm_requests`, `<prefix>dm_requests_answered`,
    ... over rows of fct_x_dm_requests (qualified by `rel`), grouped by the caller -#}
{% macro dm_request_counts(prefix='', rel='') -%}
    count(*) as {{ prefix }}dm_requests,
    count(*) filter (where {{ rel }}is_answered) as {{ prefix }}dm_requests_answered,
    count(*) filter (where {{ rel }}is_waiting) as {{ prefix }}dm_requests_waiting,
    count(*) filter (
        where {{ rel }}is_answered_within_target
    ) as {{ prefix }}dm_requests_within_target,
    count(*) filter (where {{ rel }}is_target_breached) as {{ prefix }}dm_requests_target_breached
{%- endmacro %}

{#- a response rate: answered / those needing an answer that are no longer waiting -#}
{% macro response_rate(answered, needing, waiting) -%}
    cast(({{ answered }}) as double) / nullif(({{ needing }}) - ({{ waiting }}), 0)
{%- endmacro %}

{#- a DM figure of an account's day: null (unknown, never 0) unless its DMs were read by
    every X batch of the day (`authorised`) and X's data of the day is not missing or
    refused (the model's `coverage` CTE); a count is 0 when nothing happened -#}
{% macro unless_dm_unknown(authorised, expression, is_count=true) -%}
    case
        when {{ authorised }} and {{ coverage_status('x') }} not in ('missing', 'refused')
            then {% if is_count %}coalesce({{ expression }}, 0){% else %}{{ expression }}{% endif %}
    end
{%- endmacro %}
