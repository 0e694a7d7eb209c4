-- A stale source stops publication: a source whose last load is older than its
-- `freshness.error_after` (the sources' own config, the one `dbt source freshness` checks)
-- fails the build, so nothing is published. A source's last load is its
-- `loaded_at_query` (its last batch: one row per batch, whatever the history kept), or
-- else the latest `loaded_at_field` of each of its tables. No load at all: nothing to judge.
-- depends_on: {{ source('x', 'posts') }}
-- depends_on: {{ source('support_site', 'requests') }}
-- (so that a build of either source's changes selects it; the graph is read at run time)
{%- set checks = [] %}
{%- if execute %}
    {%- for source in graph.sources.values()
        if source.freshness and source.freshness.error_after
        and source.freshness.error_after.count
        and (source.loaded_at_query or source.loaded_at_field) %}
        {%- if source.loaded_at_query %}
            {%- set query = source.loaded_at_query %}
            {%- set name = source.source_name %}
        {%- else %}
            {%- set query = 'select max(' ~ source.loaded_at_field ~ ') from '
                ~ source.database ~ '.' ~ source.schema ~ '.' ~ source.identifier %}
            {%- set name = source.source_name ~ '.' ~ source.name %}
        {%- endif %}
        {%- if target.type != 'duckdb' %}
            {#- a loaded_at_query names DuckDB's attached raw database (raw.main.batches): on Spark the table is main.batches -#}
            {%- set query = query | replace('raw.main.', 'main.') %}
        {%- endif %}
        {%- set after = source.freshness.error_after %}
        {%- set check = (name, query, after.count ~ ' ' ~ after.period) %}
        {%- if check not in checks %}{% do checks.append(check) %}{% endif %}
    {%- endfor %}
{%- endif %}

with

last_loads as (
{%- for name, query, after in checks %}
    select
        '{{ name }}' as source_name,
        ({{ query }}) as last_loaded_at,
        interval '{{ after }}' as error_after
    {% if not loop.last %}union all{% endif %}
{%- else %}
    select
        null as source_name,
        null::timestamp as last_loaded_at,
        null::interval as error_after
    where false
{%- endfor %}
),

final as (
    select source_name, last_loaded_at
    from last_loads
    where last_loaded_at < {{ utc_now() }} - error_after
)

select * from final
