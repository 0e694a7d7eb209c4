{#- The accounts' care settings (var x_account_care, from ENGAGEMENT_ACCOUNTS_FILE through
    engagement/accounts.py): one entry per configured account (username, lowercase) and one
    with username null for every other account. -#}

{#- an account's care entry: its own username when the var has one, else null (the
    defaults' entry); join on it with `is not distinct from` -#}
{% macro care_username(username) -%}
    case
        when lower({{ username }}) in ({{ lowercase_string_list(care_usernames()) }})
            then lower({{ username }})
    end
{%- endmacro %}

{% macro care_usernames() -%}
    {{- return(var('x_account_care') | map(attribute='username') | reject('none') | list) -}}
{%- endmacro %}

{#- a SQL literal of a var's value: null, a number or a quoted string -#}
{% macro care_literal(value) -%}
    {%- if value is none -%}null{%- elif value is number -%}{{ value }}{%- else -%}{{ sql_string(value) }}{%- endif -%}
{%- endmacro %}

{#- the wall-clock timestamp `ts` of the time zone `tz` as a UTC timestamp -#}
{% macro local_to_utc(ts, tz) -%}
    {{ return(adapter.dispatch('local_to_utc')(ts, tz)) }}
{%- endmacro %}

{% macro default__local_to_utc(ts, tz) -%}
    timezone('UTC', timezone({{ tz }}, {{ ts }}))
{%- endmacro %}

{% macro spark__local_to_utc(ts, tz) -%}
    cast(to_utc_timestamp({{ ts }}, {{ tz }}) as timestamp_ntz)
{%- endmacro %}

{#- the care entries as rows (care_username, time_zone, target_minutes, target_basis) -#}
{% macro care_entries_sql() -%}
    {%- for entry in var('x_account_care') -%}
        select cast({{ care_literal(entry.username) }} as string) as care_username, cast({{ care_literal(entry.time_zone) }} as string) as time_zone, cast({{ care_literal(entry.target_minutes) }} as double) as target_minutes, cast({{ care_literal(entry.target_basis) }} as string) as target_basis{{ ' union all ' if not loop.last }}
    {%- endfor -%}
{%- endmacro %}

{#- their weekly openings as rows (care_username, iso_weekday, opens_minute, closes_minute) -#}
{% macro care_openings_sql() -%}
    select cast(null as string) as care_username, cast(null as integer) as iso_weekday, cast(null as integer) as opens_minute, cast(null as integer) as closes_minute where false
    {%- for entry in var('x_account_care') -%}{%- for day, opens, closes in entry.openings %} union all select {{ care_literal(entry.username) }}, {{ day }}, {{ opens }}, {{ closes }}{%- endfor -%}{%- endfor -%}
{%- endmacro %}

{#- their holidays as rows (care_username, holiday_date) -#}
{% macro care_holidays_sql() -%}
    select cast(null as string) as care_username, cast(null as date) as holiday_date where false
    {%- for entry in var('x_account_care') -%}{%- for day in entry.holidays %} union all select {{ care_literal(entry.username) }}, date '{{ day }}'{%- endfor -%}{%- endfor -%}
{%- endmacro %}
