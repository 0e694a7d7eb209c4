{#-
    Version 1 (deprecated, see the deprecation_date in agg_daily_engagement.yml): version 2
    without the social networks' columns, with the daily ratios and the daily median first response
    that version 2 leaves to the metrics. A plain table rebuilt by every build.
-#}

{{ config(materialized='table') }}

with

days as (

    select * from {{ ref('agg_daily_engagement', v=2) }}

),

mentions as (

    select * from {{ ref('fct_x_mentions', v=2) }}

),

first_responses_daily as (

    select
        created_date as date_day,
        median(first_response_minutes) as x_median_first_response_minutes

    from mentions
    where is_answered
    group by created_date

),

final as (

    select
        days.date_day,
        days.x_posts,
        days.x_replies,
        days.x_replies_to_customers,
        days.x_retweets,
        days.x_mentions,
        days.x_mentions_answered,
        case
            when days.x_mentions > 0 then days.x_mentions_answered / days.x_mentions
        end as x_response_rate,
        first_responses_daily.x_median_first_response_minutes,
        case
            when days.x_posts + days.x_replies_to_customers > 0
                then days.x_replies_to_customers / (days.x_posts + days.x_replies_to_customers)
        end as x_conversation_share,
        days.support_requests,
        days.support_sessions,
        days.social_sessions,
        days.x_referred_sessions,
        days.search_sessions,
        days.own_site_sessions,
        days.email_sessions,
        days.ai_assistant_sessions,
        days.direct_sessions,
        days.internal_sessions,
        days.other_sessions,
        case
            when days.support_sessions > 0 then days.social_sessions / days.support_sessions
        end as social_session_share

    from days
    left join first_responses_daily
        on days.date_day = first_responses_daily.date_day

)

select * from final
