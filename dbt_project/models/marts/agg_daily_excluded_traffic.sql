{#-
    What the support-site figures leave out, and why: per UTC day and kind, the requests of
    internal traffic and of bots (by user agent or by behaviour). Incremental by day
    (microbatch on date_day): dbt reads the batch's day of requests.
-#}

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

requests as (

    select * from {{ ref('int_support_site__requests_classified') }}

),

excluded as (

    select
        requested_date as date_day,
        case
            when is_internal_traffic then 'internal_traffic'
            when {{ starts_with('bot_kind', "'behaviour_'") }} then 'behaviour'
            else 'user_agent'
        end as exclusion_rule,
        coalesce(internal_kind, bot_kind, 'unclassified') as kind,
        visitor_id,
        user_agent,
        is_page_request

    from requests
    where is_internal_traffic or is_bot

),

final as (

    select
        date_day,
        exclusion_rule,
        kind,
        count(distinct concat_ws('|', visitor_id, coalesce(user_agent, ''))) as visitors,
        count(*) as requests,
        count(*) filter (where is_page_request) as page_views

    from excluded
    group by date_day, exclusion_rule, kind

)

select * from final
