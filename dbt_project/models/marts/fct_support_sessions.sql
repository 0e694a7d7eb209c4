{#-
    One row per support-site session of a person (bots and other programs excluded): see
    int_support_site__sessions for how page views are grouped into sessions and how a
    session gets its channel.

    Incremental by day (microbatch on session_started_at): dbt reads the batch's day of
    sessions.
-#}

{{
    config(
        materialized='incremental',
        incremental_strategy='microbatch',
        event_time='session_started_at',
        batch_size='day',
        begin='2020-01-01',
        lookback=2,
        partition_by='session_date',
    )
}}

with

sessions as (

    select * from {{ ref('int_support_site__sessions') }}

),

final as (

    select
        session_id,
        visitor_id,
        site,
        session_started_at,
        session_ended_at,
        session_date,
        session_duration_seconds,
        page_views,
        page_views = 1 as is_bounce,
        landing_path,
        channel,
        referrer_network,
        referrer_host,
        utm_source,
        utm_medium

    from sessions

)

select * from final
