{#-
    Version 2: additive counts only (the rates are metrics: see _marts__semantic_models.yml),
    and social sessions per network.

    Incremental: the days of engagement_days() (macros/incremental.sql) are recomputed; days
    that left the date spine are deleted.
-#}

{{
    config(
        materialized='incremental',
        incremental_strategy='replace_where',
        incremental_predicates=[engagement_days_replaced()],
    )
}}

-- depends_on: {{ ref('int_support_site__changed_days') }}

with

days as (

    {{ engagement_days(ref('int_date_spine')) }}

),

posts as (

    select * from {{ ref('int_x__posts_classified') }}
    {% if is_incremental() -%}
        where created_date in (select date_day from days)
    {%- endif %}

),

mentions as (

    select * from {{ ref('int_x__mentions_responses') }}
    {% if is_incremental() -%}
        where created_date in (select date_day from days)
    {%- endif %}

),

support_site_days as (

    select * from {{ ref('int_support_site__daily_traffic') }}
    {% if is_incremental() -%}
        where date_day in (select date_day from days)
    {%- endif %}

),

own_posts_daily as (

    select
        created_date as date_day,
        count(*) filter (where post_type in ('original', 'quote')) as x_posts,
        count(*) filter (where post_type = 'reply') as x_replies,
        count(*) filter (where is_reply_to_customer) as x_replies_to_customers,
        count(*) filter (where post_type = 'retweet') as x_retweets

    from posts
    where is_own
    group by created_date

),

mentions_daily as (

    select
        created_date as date_day,
        count(*) as x_mentions,
        count(*) filter (where is_answered) as x_mentions_answered

    from mentions
    group by created_date

),

final as (

    select
        days.date_day,
        coalesce(own_posts_daily.x_posts, 0) as x_posts,
        coalesce(own_posts_daily.x_replies, 0) as x_replies,
        coalesce(own_posts_daily.x_replies_to_customers, 0) as x_replies_to_customers,
        coalesce(own_posts_daily.x_retweets, 0) as x_retweets,
        coalesce(mentions_daily.x_mentions, 0) as x_mentions,
        coalesce(mentions_daily.x_mentions_answered, 0) as x_mentions_answered,
        coalesce(support_site_days.page_views, 0) as support_requests,
        coalesce(support_site_days.sessions, 0) as support_sessions,
        coalesce(support_site_days.social_sessions, 0) as social_sessions,
        coalesce(support_site_days.x_referred_sessions, 0) as x_referred_sessions,
        coalesce(support_site_days.facebook_sessions, 0) as facebook_sessions,
        coalesce(support_site_days.linkedin_sessions, 0) as linkedin_sessions,
        coalesce(support_site_days.other_social_sessions, 0) as other_social_sessions,
        coalesce(support_site_days.search_sessions, 0) as search_sessions,
        coalesce(support_site_days.own_site_sessions, 0) as own_site_sessions,
        coalesce(support_site_days.email_sessions, 0) as email_sessions,
        coalesce(support_site_days.ai_assistant_sessions, 0) as ai_assistant_sessions,
        coalesce(support_site_days.direct_sessions, 0) as direct_sessions,
        coalesce(support_site_days.internal_sessions, 0) as internal_sessions,
        coalesce(support_site_days.other_sessions, 0) as other_sessions

    from days
    left join own_posts_daily
        on days.date_day = own_posts_daily.date_day
    left join mentions_daily
        on days.date_day = mentions_daily.date_day
    left join support_site_days
        on days.date_day = support_site_days.date_day

)

select * from final
