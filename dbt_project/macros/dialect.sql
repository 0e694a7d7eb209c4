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

{#- a value as a quoted SQL string literal (Spark reads backslashes in literals as escapes) -#}
{% macro sql_string(value) -%}
    {{ return(adapter.dispatch('sql_string')(value)) }}
{%- endmacro %}

{% macro default__sql_string(value) -%}
    '{{ value | string | replace("'", "''") }}'
{%- endmacro %}

{% macro spark__sql_string(value) -%}
    '{{ value | string | replace("\\", "\\\\") | replace("'", "\\'") }}'
{%- endmacro %}

{#- a regular expression (RE2's syntax, DuckDB's) as the SQL literal of the target's engine:
    on Spark (Java regular expressions) `\b` is an ASCII word boundary, as RE2's (Java's
    counts non-ASCII letters as word characters), and `(?i)` folds case as RE2 does
    (Unicode) -#}
{% macro regex_literal(pattern) -%}
    {{ return(adapter.dispatch('regex_literal')(pattern)) }}
{%- endmacro %}

{% macro default__regex_literal(pattern) -%}
    {{ sql_string(pattern) }}
{%- endmacro %}

{% macro spark__regex_literal(pattern) -%}
    {%- set pattern = pattern | string
        | replace('\\b', '(?:(?<=\\w)(?!\\w)|(?<!\\w)(?=\\w))')
        | replace('(?i)', '(?iu)')
        | replace('(?i:', '(?iu:') -%}
    {{ sql_string(pattern) }}
{%- endmacro %}

{#- `value` with every match of the regular expression literal `pattern` replaced by the
    string literal `replacement` (no group references) -#}
{% macro regex_replace_all(value, pattern, replacement) -%}
    {{ return(adapter.dispatch('regex_replace_all')(value, pattern, replacement)) }}
{%- endmacro %}

{% macro default__regex_replace_all(value, pattern, replacement) -%}
    regexp_replace({{ value }}, {{ pattern }}, {{ replacement }}, 'g')
{%- endmacro %}

{% macro spark__regex_replace_all(value, pattern, replacement) -%}
    regexp_replace({{ value }}, {{ pattern }}, {{ replacement }})
{%- endmacro %}

{#- the JSON at the JSONPath `path` of JSON `json` (DuckDB: JSON; Spark: its text), null
    when absent -#}
{% macro json_fragment(json, path) -%}
    {{ return(adapter.dispatch('json_fragment')(json, path)) }}
{%- endmacro %}

{% macro default__json_fragment(json, path) -%}
    json_extract({{ json }}, '{{ path }}')
{%- endmacro %}

{% macro spark__json_fragment(json, path) -%}
    get_json_object({{ json }}, '{{ path }}')
{%- endmacro %}

{#- the texts a JSONPath with one `[*]` selects (e.g. `$.entities.urls[*].expanded_url`), as a
    list in array order, elements without the value left out; empty when the array is
    absent or not an array, null when `json` is -#}
{% macro json_string_list(json, path) -%}
    {{ return(adapter.dispatch('json_string_list')(json, path)) }}
{%- endmacro %}

{% macro default__json_string_list(json, path) -%}
    json_extract_string({{ json }}, '{{ path }}')
{%- endmacro %}

{% macro spark__json_string_list(json, path) -%}
    {%- set array_path, element_path = path.split('[*]', 1) -%}
    {%- set array -%}
        {%- if array_path == '$' -%}{{ json }}{%- else -%}get_json_object({{ json }}, '{{ array_path }}'){%- endif -%}
    {%- endset -%}
    case
        when ({{ json }}) is not null
            then coalesce(
                filter(
                    {%- if element_path %}
                    transform(
                        from_json({{ array }}, 'array<string>'),
                        json_element -> get_json_object(json_element, '${{ element_path }}')
                    ),
                    {%- else %}
                    from_json({{ array }}, 'array<string>'),
                    {%- endif %}
                    json_value -> json_value is not null
                ),
                array()
            )
    end
{%- endmacro %}

{#- an empty list -#}
{% macro empty_list() -%}
    {{ return(adapter.dispatch('empty_list')()) }}
{%- endmacro %}

{% macro default__empty_list() -%}
    []
{%- endmacro %}

{% macro spark__empty_list() -%}
    array()
{%- endmacro %}

{#- the number of elements of a list (null when the list is) -#}
{% macro list_length(list) -%}
    {{ return(adapter.dispatch('list_length')(list)) }}
{%- endmacro %}

{% macro default__list_length(list) -%}
    len({{ list }})
{%- endmacro %}

{% macro spark__list_length(list) -%}
    array_size({{ list }})
{%- endmacro %}

{#- the element of a list at a 1-based position; null when out of range or null -#}
{% macro list_element(list, position) -%}
    {{ return(adapter.dispatch('list_element')(list, position)) }}
{%- endmacro %}

{% macro default__list_element(list, position) -%}
    {{ list }}[{{ position }}]
{%- endmacro %}

{% macro spark__list_element(list, position) -%}
    try_element_at({{ list }}, cast({{ position }} as int))
{%- endmacro %}

{#- the 1-based position of the first element of a list equal to `value`; null when none is -#}
{% macro list_position(list, value) -%}
    {{ return(adapter.dispatch('list_position')(list, value)) }}
{%- endmacro %}

{% macro default__list_position(list, value) -%}
    list_position({{ list }}, {{ value }})
{%- endmacro %}

{% macro spark__list_position(list, value) -%}
    nullif(array_position({{ list }}, {{ value }}), 0)
{%- endmacro %}

{#- whether a list has an element equal to `value` -#}
{% macro list_contains(list, value) -%}
    {{ return(adapter.dispatch('list_contains')(list, value)) }}
{%- endmacro %}

{% macro default__list_contains(list, value) -%}
    list_contains({{ list }}, {{ value }})
{%- endmacro %}

{% macro spark__list_contains(list, value) -%}
    array_contains({{ list }}, {{ value }})
{%- endmacro %}

{#- in a select list: one row per element of a list (none for an empty or null list) -#}
{% macro unnest_list(list) -%}
    {{ return(adapter.dispatch('unnest_list')(list)) }}
{%- endmacro %}

{% macro default__unnest_list(list) -%}
    unnest({{ list }})
{%- endmacro %}

{% macro spark__unnest_list(list) -%}
    explode({{ list }})
{%- endmacro %}

{#- in a select list: one row per element of a list, two columns: the element (`as_value`)
    and its 1-based position (`as_position`) -#}
{% macro unnest_list_with_position(list, as_value, as_position) -%}
    {{ return(adapter.dispatch('unnest_list_with_position')(list, as_value, as_position)) }}
{%- endmacro %}

{% macro default__unnest_list_with_position(list, as_value, as_position) -%}
    unnest({{ list }}) as {{ as_value }},
    unnest(generate_series(1, len({{ list }}))) as {{ as_position }}
{%- endmacro %}

{% macro spark__unnest_list_with_position(list, as_value, as_position) -%}
    inline(transform(
        {{ list }},
        (list_value, list_index) -> named_struct(
            '{{ as_value }}', list_value, '{{ as_position }}', cast(list_index + 1 as bigint)
        )
    ))
{%- endmacro %}

{#- the aggregate list of `value` ordered by the expressions `order_by` (ascending, nulls
    last), nulls kept -#}
{% macro ordered_list_agg(value, order_by) -%}
    {{ return(adapter.dispatch('ordered_list_agg')(value, order_by)) }}
{%- endmacro %}

{% macro default__ordered_list_agg(value, order_by) -%}
    list({{ value }} order by {{ order_by | join(', ') }})
{%- endmacro %}

{% macro spark__ordered_list_agg(value, order_by) -%}
    transform(
        array_sort(collect_list(struct(
            {%- for key in order_by %}
            ({{ key }}) is null as null_{{ loop.index }},
            {{ key }} as key_{{ loop.index }},
            {%- endfor %}
            {{ value }} as list_value
        ))),
        sort_entry -> sort_entry.list_value
    )
{%- endmacro %}

{#- a numeric id (a string of digits) as a number, to order ids by; null when not one -#}
{% macro numeric_id(value) -%}
    {{ return(adapter.dispatch('numeric_id')(value)) }}
{%- endmacro %}

{% macro default__numeric_id(value) -%}
    try_cast({{ value }} as hugeint)
{%- endmacro %}

{% macro spark__numeric_id(value) -%}
    try_cast({{ value }} as decimal(38, 0))
{%- endmacro %}

{#- a timestamp parsed from X's ISO 8601 text (2026-11-02T10:00:00.000Z, or without the
    milliseconds); null when it is neither -#}
{% macro parse_x_timestamp(text) -%}
    {{ return(adapter.dispatch('parse_x_timestamp')(text)) }}
{%- endmacro %}

{% macro default__parse_x_timestamp(text) -%}
    try_strptime(
        {{ text }},
        ['%Y-%m-%dT%H:%M:%S.%gZ', '%Y-%m-%dT%H:%M:%SZ']
    )
{%- endmacro %}

{% macro spark__parse_x_timestamp(text) -%}
    cast(coalesce(
        try_to_timestamp({{ text }}, "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'"),
        try_to_timestamp({{ text }}, "yyyy-MM-dd'T'HH:mm:ss'Z'")
    ) as timestamp_ntz)
{%- endmacro %}

{#- an interval of `n` days -#}
{% macro interval_days(n) -%}
    {{ return(adapter.dispatch('interval_days')(n)) }}
{%- endmacro %}

{% macro default__interval_days(n) -%}
    to_days({{ n }})
{%- endmacro %}

{% macro spark__interval_days(n) -%}
    make_dt_interval({{ n }}, 0, 0, 0)
{%- endmacro %}

{#- an interval of `n` minutes (an integer) -#}
{% macro interval_minutes(n) -%}
    {{ return(adapter.dispatch('interval_minutes')(n)) }}
{%- endmacro %}

{% macro default__interval_minutes(n) -%}
    to_minutes({{ n }})
{%- endmacro %}

{% macro spark__interval_minutes(n) -%}
    make_dt_interval(0, 0, {{ n }}, 0)
{%- endmacro %}

{#- an interval of `n` seconds (microsecond precision) -#}
{% macro interval_seconds(n) -%}
    {{ return(adapter.dispatch('interval_seconds')(n)) }}
{%- endmacro %}

{% macro default__interval_seconds(n) -%}
    to_seconds({{ n }})
{%- endmacro %}

{% macro spark__interval_seconds(n) -%}
    make_dt_interval(0, 0, 0, cast({{ n }} as decimal(18, 6)))
{%- endmacro %}

{#- `value` (a double) rounded to `digits` decimals (0 to 7), halves away from zero, as DuckDB
    rounds a double: by its exact binary value (0.15, 0.1499999999999999944..., to 1 decimal
    is 0.1). Spark's round reads a double as its shortest decimal (0.15, so 0.2): there a
    tie of the scaled value is decided by its exact error (Dekker's product) -#}
{% macro round_double(value, digits) -%}
    {{ return(adapter.dispatch('round_double')(value, digits)) }}
{%- endmacro %}

{% macro default__round_double(value, digits) -%}
    round({{ value }}, {{ digits }})
{%- endmacro %}

{% macro spark__round_double(value, digits) -%}
    {%- set scale = (10 ** digits) ~ 'D' -%}
    {%- set high = '(134217729D * rounded.v - (134217729D * rounded.v - rounded.v))' -%}
    element_at(transform(
        array(named_struct('v', cast({{ value }} as double), 'p', cast({{ value }} as double) * {{ scale }})),
        rounded -> case
            when rounded.p - floor(rounded.p) != 0.5D then round(rounded.p)
            -- a tie of the scaled double: the exact product's error decides
            when
                ({{ high }} * {{ scale }} - rounded.p) + (rounded.v - {{ high }}) * {{ scale }} < 0
                or (
                    ({{ high }} * {{ scale }} - rounded.p) + (rounded.v - {{ high }}) * {{ scale }} = 0
                    and rounded.p < 0
                )
                then floor(rounded.p)
            else floor(rounded.p) + 1
        end / {{ scale }}
    ), 1)
{%- endmacro %}

{#-
    Contracts. The marts' contracts declare DuckDB's types (varchar, integer, timestamp...),
    what the published DuckDB file has. On Spark a declared type is read as Spark's type of
    the same values: varchar is string, timestamp (DuckDB's has no time zone) timestamp_ntz.
-#}

{#- Spark's name of the type of a contract's data_type in DuckDB's words. -#}
{% macro spark_data_type(data_type) -%}
    {%- set name = data_type | trim | lower -%}
    {%- if name.endswith('[]') -%}
        array<{{ spark_data_type(name[:-2]) }}>
    {%- else -%}
        {{- {'varchar': 'string', 'text': 'string', 'timestamp': 'timestamp_ntz', 'hugeint': 'decimal(38, 0)'}.get(name, name) -}}
    {%- endif -%}
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
