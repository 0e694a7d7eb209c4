{#-
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
        count(*) filter (where is_answered) as x_mentions_answered,
        median(first_response_minutes) as x_median_first_response_minutes

    from mentions
    group by created_date

),

joined as (

    select
        days.date_day,
        coalesce(own_posts_daily.x_posts, 0) as x_posts,
        coalesce(own_posts_daily.x_replies, 0) as x_replies,
        coalesce(own_posts_daily.x_replies_to_customers, 0) as x_replies_to_customers,
        coalesce(own_posts_daily.x_retweets, 0) as x_retweets,
        coalesce(mentions_daily.x_mentions, 0) as x_mentions,
        coalesce(mentions_daily.x_mentions_answered, 0) as x_mentions_answered,
        mentions_daily.x_median_first_response_minutes,
        coalesce(support_site_days.page_views, 0) as support_requests,
        coalesce(support_site_days.sessions, 0) as support_sessions,
        coalesce(support_site_days.social_sessions, 0) as social_sessions,
        coalesce(support_site_days.x_referred_sessions, 0) as x_referred_sessions,
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

),

final as (

    select
        date_day,
        x_posts,
        x_replies,
        x_replies_to_customers,
        x_retweets,
        x_mentions,
        x_mentions_answered,
        case
            when x_mentions > 0 then x_mentions_answered / x_mentions
        end as x_response_rate,
        x_median_first_response_minutes,
        case
            when x_posts + x_replies_to_customers > 0
                then x_replies_to_customers / (x_posts + x_replies_to_customers)
        end as x_conversation_share,
        support_requests,
        support_sessions,
        social_sessions,
        x_referred_sessions,
        search_sessions,
        own_site_sessions,
        email_sessions,
        ai_assistant_sessions,
        direct_sessions,
        internal_sessions,
        other_sessions,
        case
            when support_sessions > 0 then social_sessions / support_sessions
        end as social_session_share

    from joined

)

select * from final
