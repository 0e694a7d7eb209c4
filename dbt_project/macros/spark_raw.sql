{#-
    On the `spark` target, the sources are Spark tables over the raw warehouse's tables
    exported as Parquet (engagement/warehouse/spark.py) under ENGAGEMENT_SPARK_RAW, a
    directory per table with a directory per batch (hence recursiveFileLookup) and files of
    older batches without the columns added since (hence mergeSchema): made again at the
    start of every run, so each run lists the files of the export in force.
-#}
{% macro spark_raw_tables() -%}
    {%- if target.type == 'spark' and execute -%}
        {%- set raw = env_var('ENGAGEMENT_SPARK_RAW', 'spark_raw') -%}
        {%- for node in graph.sources.values() -%}
            {%- do run_query('create database if not exists ' ~ node.schema) -%}
            {%- do run_query('drop table if exists ' ~ node.schema ~ '.' ~ node.identifier) -%}
            {%- do run_query(
                'create table ' ~ node.schema ~ '.' ~ node.identifier ~ ' using parquet'
                ~ " options (recursiveFileLookup 'true', mergeSchema 'true') location '"
                ~ raw ~ '/' ~ node.schema ~ '/' ~ node.identifier ~ "'"
            ) -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}
