{#-
    One row per UTC day with any support-site request: page views, the page requests left
    out of them (by bots, of which by behaviour, and by internal traffic), and sessions (by
    the day they started) per channel. Incremental by day (microbatch on date_day): dbt reads the
    batch's day of requests and sessions.
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

sessions as (

    select * from {{ ref('int_support_site__sessions') }}

),

requests_daily as (

    select
        requested_date as date_day,
        count(*) as requests,
        count(*) filter (where is_page_view) as page_views,
        count(*) filter (where is_page_request and is_bot) as bot_page_views,
        count(*) filter (
            where is_page_request and {{ starts_with('bot_kind', "'behaviour_'") }}
        ) as behaviour_bot_page_views,
        count(*) filter (where is_page_request and is_internal_traffic) as internal_page_views

    from requests
    group by requested_date

),

sessions_daily as (

    select
        session_date as date_day,
        count(*) as sessions,
        count(*) filter (where channel = 'social') as social_sessions,
        count(*) filter (
            where channel = 'social' and referrer_network = 'Twitter'
        ) as x_referred_sessions,
        count(*) filter (
            where channel = 'social' and referrer_network = 'Facebook'
        ) as facebook_sessions,
        count(*) filter (
            where channel = 'social' and referrer_network = 'LinkedIn'
        ) as linkedin_sessions,
        count(*) filter (
            where channel = 'social'
            and coalesce(referrer_network, '') not in ('Twitter', 'Facebook', 'LinkedIn')
        ) as other_social_sessions,
        count(*) filter (where channel = 'search') as search_sessions,
        count(*) filter (where channel = 'own_site') as own_site_sessions,
        count(*) filter (where channel = 'email') as email_sessions,
        count(*) filter (where channel = 'ai_assistant') as ai_assistant_sessions,
        count(*) filter (where channel = 'direct') as direct_sessions,
        count(*) filter (where channel = 'internal') as internal_sessions,
        count(*) filter (
            where channel not in (
                'social', 'search', 'own_site', 'email', 'ai_assistant', 'direct', 'internal'
            )
            or channel is null
        ) as other_sessions

    from sessions
    group by session_date

),

final as (

    select
        requests_daily.date_day,
        requests_daily.requests,
        requests_daily.page_views,
        requests_daily.bot_page_views,
        requests_daily.behaviour_bot_page_views,
        requests_daily.internal_page_views,
        coalesce(sessions_daily.sessions, 0) as sessions,
        coalesce(sessions_daily.social_sessions, 0) as social_sessions,
        coalesce(sessions_daily.x_referred_sessions, 0) as x_referred_sessions,
        coalesce(sessions_daily.facebook_sessions, 0) as facebook_sessions,
        coalesce(sessions_daily.linkedin_sessions, 0) as linkedin_sessions,
        coalesce(sessions_daily.other_social_sessions, 0) as other_social_sessions,
        coalesce(sessions_daily.search_sessions, 0) as search_sessions,
        coalesce(sessions_daily.own_site_sessions, 0) as own_site_sessions,
        coalesce(sessions_daily.email_sessions, 0) as email_sessions,
        coalesce(sessions_daily.ai_assistant_sessions, 0) as ai_assistant_sessions,
        coalesce(sessions_daily.direct_sessions, 0) as direct_sessions,
        coalesce(sessions_daily.internal_sessions, 0) as internal_sessions,
        coalesce(sessions_daily.other_sessions, 0) as other_sessions

    from requests_daily
    left join sessions_daily
        on requests_daily.date_day = sessions_daily.date_day

)

select * from final
