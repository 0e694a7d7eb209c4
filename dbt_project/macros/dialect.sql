{#-
    SQL that DuckDB (the `build` target, the reference) and Spark (the `spark` target) spell
    differently: one macro per construct, `default__` DuckDB's SQL, `spark__` Spark's. A model
    writes SQL both engines accept as-is where that is as clear (`::` casts, `filter (where
    ...)`, bool_or, `cast(x as string)`, `interval 30 minute`, regular expressions without
    backslashes: `[.]`, not `\.`, since a Spark string literal drops the backslash); these
    macros are for the rest.
-#}

{#- Seconds since 1970-01-01 of a timestamp expression (a double, with its fraction), a number a `range` frame can order by. -#}
{% macro epoch_seconds(ts) -%}
    {{ return(adapter.dispatch('epoch_seconds')(ts)) }}
{%- endmacro %}

{% macro default__epoch_seconds(ts) -%}
    epoch({{ ts }})
{%- endmacro %}

{% macro spark__epoch_seconds(ts) -%}
    (unix_micros({{ ts }}) / 1000000)
{%- endmacro %}

{#- The seconds (a double, with their fraction) from timestamp `start` to timestamp `end`. -#}
{% macro seconds_between(start, end) -%}
    {{ return(adapter.dispatch('seconds_between')(start, end)) }}
{%- endmacro %}

{% macro default__seconds_between(start, end) -%}
    epoch({{ end }} - {{ start }})
{%- endmacro %}

{% macro spark__seconds_between(start, end) -%}
    ((unix_micros({{ end }}) - unix_micros({{ start }})) / 1000000)
{%- endmacro %}

{#- The number of `unit` boundaries (second, minute, hour, day) crossed from timestamp `start` to `end`, a bigint: DuckDB's date_diff. -#}
{% macro date_diff(unit, start, end) -%}
    {{ return(adapter.dispatch('date_diff')(unit, start, end)) }}
{%- endmacro %}

{% macro default__date_diff(unit, start, end) -%}
    date_diff('{{ unit }}', {{ start }}, {{ end }})
{%- endmacro %}

{% macro spark__date_diff(unit, start, end) -%}
    {%- set seconds = {'second': 1, 'minute': 60, 'hour': 3600} -%}
    {%- if unit == 'day' -%}
        datediff(cast({{ end }} as date), cast({{ start }} as date))
    {%- elif unit in seconds -%}
        (unix_seconds({{ end }}) div {{ seconds[unit] }} - unix_seconds({{ start }}) div {{ seconds[unit] }})
    {%- else -%}
        {{ exceptions.raise_compiler_error('date_diff: no Spark SQL for unit ' ~ unit) }}
    {%- endif -%}
{%- endmacro %}

{#- A select-list expression that makes one row per day (a date) from date `start` to date `end`, both included; none when start > end is not allowed on Spark. -#}
{% macro date_series(start, end) -%}
    {{ return(adapter.dispatch('date_series')(start, end)) }}
{%- endmacro %}

{% macro default__date_series(start, end) -%}
    cast(unnest(generate_series({{ start }}, {{ end }}, interval 1 day)) as date)
{%- endmacro %}

{% macro spark__date_series(start, end) -%}
    explode(sequence(cast({{ start }} as date), cast({{ end }} as date), interval 1 day))
{%- endmacro %}

{#- The ISO day of the week of a date: 1 (Monday) to 7 (Sunday). -#}
{% macro iso_day_of_week(day) -%}
    {{ return(adapter.dispatch('iso_day_of_week')(day)) }}
{%- endmacro %}

{% macro default__iso_day_of_week(day) -%}
    isodow({{ day }})
{%- endmacro %}

{% macro spark__iso_day_of_week(day) -%}
    extract(dayofweek_iso from {{ day }})
{%- endmacro %}

{#- Whether string `value` starts with string `prefix` (null when either is null). -#}
{% macro starts_with(value, prefix) -%}
    {{ return(adapter.dispatch('starts_with')(value, prefix)) }}
{%- endmacro %}

{% macro default__starts_with(value, prefix) -%}
    starts_with({{ value }}, {{ prefix }})
{%- endmacro %}

{% macro spark__starts_with(value, prefix) -%}
    startswith({{ value }}, {{ prefix }})
{%- endmacro %}

{#- Whether the regular expression `pattern` matches somewhere in `value` (null when either is null). -#}
{% macro regex_matches(value, pattern) -%}
    {{ return(adapter.dispatch('regex_matches')(value, pattern)) }}
{%- endmacro %}

{% macro default__regex_matches(value, pattern) -%}
    regexp_matches({{ value }}, {{ pattern }})
{%- endmacro %}

{% macro spark__regex_matches(value, pattern) -%}
    regexp_like({{ value }}, {{ pattern }})
{%- endmacro %}

{#- The string literal that stands for capture group `n` in regexp_replace's replacement: '\n' (RE2) or '$n' (Java). -#}
{% macro regex_group_ref(n) -%}
    {{ return(adapter.dispatch('regex_group_ref')(n)) }}
{%- endmacro %}

{% macro default__regex_group_ref(n) -%}
    '\{{ n }}'
{%- endmacro %}

{% macro spark__regex_group_ref(n) -%}
    '${{ n }}'
{%- endmacro %}

{#- The aggregate of the non-null strings `value` joined by `separator` in the order of `order_by` (null when there are none); a `filter (where ...)` may follow. -#}
{% macro string_agg_ordered(value, separator, order_by) -%}
    {{ return(adapter.dispatch('string_agg_ordered')(value, separator, order_by)) }}
{%- endmacro %}

{% macro default__string_agg_ordered(value, separator, order_by) -%}
    string_agg({{ value }}, {{ separator }} order by {{ order_by }})
{%- endmacro %}

{% macro spark__string_agg_ordered(value, separator, order_by) -%}
    string_agg({{ value }}, {{ separator }}) within group (order by {{ order_by }})
{%- endmacro %}

{#- the aggregate continuous (interpolated) quantile `quantile` of `value` -#}
{% macro quantile_cont(value, quantile) -%}
    {{ return(adapter.dispatch('quantile_cont')(value, quantile)) }}
{%- endmacro %}

{% macro default__quantile_cont(value, quantile) -%}
    quantile_cont({{ value }}, {{ quantile }})
{%- endmacro %}

{% macro spark__quantile_cont(value, quantile) -%}
    percentile({{ value }}, {{ quantile }})
{%- endmacro %}

{#- The aggregate `value` of the row with the least `ordering`, rows whose value or ordering is null left out (DuckDB's arg_min; Spark's min_by keeps a null value). -#}
{% macro arg_min(value, ordering) -%}
    {{ return(adapter.dispatch('arg_min')(value, ordering)) }}
{%- endmacro %}

{% macro default__arg_min(value, ordering) -%}
    arg_min({{ value }}, {{ ordering }})
{%- endmacro %}

{% macro spark__arg_min(value, ordering) -%}
    min_by({{ value }}, case when ({{ value }}) is not null then {{ ordering }} end)
{%- endmacro %}

{#- The text of the JSON value at `path` ('$.key', '$[0]') of JSON text `json`: a string unquoted, null for a JSON null or no value. -#}
{% macro json_text(json, path) -%}
    {{ return(adapter.dispatch('json_text')(json, path)) }}
{%- endmacro %}

{% macro default__json_text(json, path) -%}
    ({{ json }} ->> '{{ path }}')
{%- endmacro %}

{% macro spark__json_text(json, path) -%}
    get_json_object({{ json }}, '{{ path }}')
{%- endmacro %}

{#- A select-list expression that makes one row per element (JSON text) of the JSON array at `path` of JSON text `json`; none when there is no array. -#}
{% macro json_array_elements(json, path) -%}
    {{ return(adapter.dispatch('json_array_elements')(json, path)) }}
{%- endmacro %}

{% macro default__json_array_elements(json, path) -%}
    unnest(from_json({{ json }} -> '{{ path }}', '["json"]'))
{%- endmacro %}

{% macro spark__json_array_elements(json, path) -%}
    explode(from_json(get_json_object({{ json }}, '{{ path }}'), 'array<string>'))
{%- endmacro %}

{#- Whether JSON text `json` is an array. -#}
{% macro json_is_array(json) -%}
    {{ return(adapter.dispatch('json_is_array')(json)) }}
{%- endmacro %}

{% macro default__json_is_array(json) -%}
    json_type({{ json }}) = 'ARRAY'
{%- endmacro %}

{% macro spark__json_is_array(json) -%}
    json_array_length({{ json }}) is not null
{%- endmacro %}

{#- The current time in UTC, a timestamp without time zone (Spark's session runs in UTC: profiles.yml). -#}
{% macro utc_now() -%}
    {{ return(adapter.dispatch('utc_now')()) }}
{%- endmacro %}

{% macro default__utc_now() -%}
    (current_timestamp at time zone 'UTC')
{%- endmacro %}

{% macro spark__utc_now() -%}
    cast(current_timestamp() as timestamp_ntz)
{%- endmacro %}

{#- A timestamp literal of `value` (text), or the earliest or latest timestamp when `value` is '-infinity' or 'infinity'. -#}
{% macro timestamp_literal(value) -%}
    {{ return(adapter.dispatch('timestamp_literal')(value)) }}
{%- endmacro %}

{% macro default__timestamp_literal(value) -%}
    cast('{{ value }}' as timestamp)
{%- endmacro %}

{% macro spark__timestamp_literal(value) -%}
    {%- set value = {'-infinity': '0001-01-01 00:00:00', 'infinity': '9999-12-31 23:59:59.999999'}.get(value, value) -%}
    cast('{{ value }}' as timestamp)
{%- endmacro %}

{#- A query of relation's `columns` unpivoted: one row per row and column, with the column's name in `name_column` and its value in `value_column` (null values left out). -#}
{% macro unpivot_columns(relation, columns, name_column, value_column) -%}
    {{ return(adapter.dispatch('unpivot_columns')(relation, columns, name_column, value_column)) }}
{%- endmacro %}

{% macro default__unpivot_columns(relation, columns, name_column, value_column) -%}
    unpivot {{ relation }}
    on {% for column in columns %}{{ adapter.quote(column) }}{{ ", " if not loop.last }}{% endfor %}
    into name {{ name_column }} value {{ value_column }}
{%- endmacro %}

{% macro spark__unpivot_columns(relation, columns, name_column, value_column) -%}
    select * from {{ relation }}
    unpivot (
        {{ value_column }} for {{ name_column }}
        in ({% for column in columns %}{{ adapter.quote(column) }}{{ ", " if not loop.last }}{% endfor %})
    )
{%- endmacro %}

{#-
    Contracts. The marts' contracts declare DuckDB's types (varchar, integer, timestamp...),
    what the published DuckDB file has. On Spark a declared type is read as Spark's type of
    the same values: varchar is string, timestamp (DuckDB's has no time zone) timestamp_ntz.
-#}

{#- Spark's name of the type of a contract's data_type in DuckDB's words. -#}
{% macro spark_data_type(data_type) -%}
    {%- set name = data_type | trim | lower -%}
    {{- {'varchar': 'string', 'text': 'string', 'timestamp': 'timestamp_ntz', 'hugeint': 'decimal(38, 0)'}.get(name, name) -}}
{%- endmacro %}

{#- dbt's query of a contract's declared columns (dbt-adapters' default, with the types read as Spark's). -#}
{% macro spark__get_empty_schema_sql(columns) -%}
    {%- set spark_columns = {} -%}
    {%- for name, column in columns.items() -%}
        {%- set spark_column = column.copy() -%}
        {%- if column.get('data_type') -%}
            {%- do spark_column.update({'data_type': spark_data_type(column['data_type'])}) -%}
        {%- endif -%}
        {%- do spark_columns.update({name: spark_column}) -%}
    {%- endfor -%}
    {{ return(default__get_empty_schema_sql(spark_columns)) }}
{%- endmacro %}
