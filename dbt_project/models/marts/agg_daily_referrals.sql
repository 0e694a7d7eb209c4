{#- Incremental by day (microbatch on date_day): dbt reads the batch's day of sessions. -#}

{{
    config(
        materialized='incremental',
        incremental_strategy='microbatch',
        event_time='date_day',
        batch_size='day',
        begin='2020-01-01',
        lookback=2,
        partition_by='date_day',
    )
}}

with

sessions as (

    select * from {{ ref('int_support_site__sessions') }}

),

final as (

    select
        session_date as date_day,
        channel,
        referrer_network,
        count(*) as sessions,
        cast(sum(page_views) as bigint) as page_views

    from sessions
    group by session_date, channel, referrer_network

)

select * from final
