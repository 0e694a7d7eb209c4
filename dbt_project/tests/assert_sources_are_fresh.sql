-- A stale source stops publication: a source table whose last load is older than its
-- `freshness.error_after` (the sources' own config, the one `dbt source freshness` checks)
-- fails the build, so nothing is published. An empty table has no load to judge.
-- depends_on: {{ source('x', 'posts') }}
-- depends_on: {{ source('support_site', 'requests') }}
-- (so that a build of either source's changes selects it; the graph is read at run time)
{%- set checks = [] %}
{%- if execute %}
    {%- for source in graph.sources.values()
        if source.loaded_at_field and source.freshness and source.freshness.error_after
        and source.freshness.error_after.count %}
        {%- do checks.append(source) %}
    {%- endfor %}
{%- endif %}

{%- for source in checks %}
select
    '{{ source.source_name }}.{{ source.name }}' as source_table,
    max({{ source.loaded_at_field }}) as last_loaded_at
from {{ source.database }}.{{ source.schema }}.{{ source.identifier }}
having
    max({{ source.loaded_at_field }})
    < (current_timestamp at time zone 'UTC')
    - interval '{{ source.freshness.error_after.count }} {{ source.freshness.error_after.period }}'
{% if not loop.last %}union all{% endif %}
{%- else %}
select
    null as source_table,
    null as last_loaded_at
where false
{%- endfor %}
