{#-
    Incremental builds use dbt's own strategies (see dbt_project/README.md):

    - The day-grained support-site models are `microbatch` models (batch_size day, on
      their event_time). `engagement build` passes `--event-time-start/--event-time-end`:
      the days of the support-site loads that changed since the last green build, widened
      by a day on each side (a day's sessions read the page views of the next day, and a
      changed day changes whether the next day's first page views continue a visit). dbt
      then rebuilds those days batch by batch, reading only their days upstream (days far
      apart, a backfill and today's load, are windows of their own, a dbt run each). Run on
      its own, without a window, dbt rebuilds today and the `lookback` (2 days) before it:
      the days late lines of yesterday change.
    - The X models are plain tables: a later batch can change a post of any age.

    in_batch() tells whether a microbatch model is building a batch, batch_start() and
    batch_end() give its bounds: for a model that reads beyond them
    (int_support_site__sessions reads `ref(...).render()`, which dbt does not filter to the
    batch).
-#}

{#-
    Whether a microbatch model is building a batch (not in a unit test, which has no batch:
    a unit test overrides in_batch, batch_start and batch_end to test the batch's branch).
-#}
{% macro in_batch() -%}
    {{ return(model.batch is defined and model.batch is not none) }}
{%- endmacro %}

{#- The start (inclusive) of the batch being built, a timestamp literal. -#}
{% macro batch_start() -%}
    cast('{{ model.batch.event_time_start }}' as timestamp)
{%- endmacro %}

{#- The end (exclusive) of the batch being built, a timestamp literal. -#}
{% macro batch_end() -%}
    cast('{{ model.batch.event_time_end }}' as timestamp)
{%- endmacro %}

{#-
    Data tests of the microbatch models and their staging read only the days this build
    rebuilt: their `where` says `__event_time_start__` and `__event_time_end__`, replaced
    here by the invocation's `--event-time-start/--event-time-end` (unbounded without them).
    dbt renders a test's `where` when it parses; this macro, dbt's documented hook for a
    dynamic `where`, runs when the test does.
-#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if not where -%}
        {{ return(relation) }}
    {%- endif -%}
    {%- set where = where
        | replace('__event_time_start__', build_window_bound('event_time_start', '-infinity'))
        | replace('__event_time_end__', build_window_bound('event_time_end', 'infinity')) -%}
    {{ return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') }}
{%- endmacro %}

{#- The build's `--event-time-start` or `--event-time-end` (`name`), a timestamp literal. -#}
{% macro build_window_bound(name, unbounded) -%}
    {{ timestamp_literal(invocation_args_dict.get(name) or unbounded) }}
{%- endmacro %}

{#-
    Spark: a microbatch batch overwrites its day's partition named in full (a static
    partition), so a day rebuilt with no rows is emptied, as DuckDB's delete and insert
    empties it; dbt-spark's dynamic overwrite replaces only the partitions the batch writes
    rows to, and would keep such a day's old rows. Anything else is dbt-spark's own SQL (but
    for Iceberg tables, which this project does not make).
-#}
{% macro get_insert_overwrite_sql(source_relation, target_relation, existing_relation) %}
    {%- set partition_by = config.get('partition_by') -%}
    {%- set dest_columns = adapter.get_columns_in_relation(target_relation) -%}
    {%- if in_batch() and partition_by is string -%}
        {%- set day = model.batch.event_time_start | string -%}
        {%- set columns = dest_columns | rejectattr('name', 'equalto', partition_by) -%}
    insert overwrite table {{ target_relation }}
    partition ({{ partition_by }} = date'{{ day[:10] }}')
    select {{ columns | map(attribute='quoted') | join(', ') }} from {{ source_relation }}
    where {{ partition_by }} = date'{{ day[:10] }}'
    {%- else -%}
    insert overwrite table {{ target_relation }}
    {{ partition_cols(label="partition") }}
    select {{ dest_columns | map(attribute='quoted') | join(', ') }} from {{ source_relation }}
    {%- endif -%}
{% endmacro %}
