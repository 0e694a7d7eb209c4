{#-
    Version 2: additive counts only (the rates are metrics, in fct_x_mentions.yml,
    fct_x_posts.yml and fct_support_sessions.yml, and agg_period_figures' columns), and
    social sessions per network.

    Coverage (agg_daily_source_coverage): x_status and support_site_status say whether
    each source's data of the day is complete; a source's figures are null, never 0, on a
    day it is missing or refused (partial days keep their partial figures, marked). A day
    outside the coverage's range (a post older than the first batch) is missing.

    A plain table rebuilt by every build that takes in X data (see macros/incremental.sql).
-#}

with

days as (

    select * from {{ ref('int_date_spine') }}

),

posts as (

    select * from {{ ref('int_x__posts_classified') }}

),

mentions as (

    select * from {{ ref('fct_x_mentions') }}

),

coverage as (

    select
        date_day,
        any_value(status) filter (where source = 'x') as x_status,
        any_value(status) filter (where source = 'support_site') as support_site_status

    from {{ ref('agg_daily_source_coverage') }}
    group by date_day

),

support_site_days as (

    select * from {{ ref('int_support_site__daily_traffic') }}

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
        {{ mention_counts(prefix='x_') }}

    from mentions
    group by created_date

),

final as (

    select
        days.date_day,
        {{ unless_missing('x', 'own_posts_daily.x_posts') }} as x_posts,
        {{ unless_missing('x', 'own_posts_daily.x_replies') }} as x_replies,
        {{ unless_missing('x', 'own_posts_daily.x_replies_to_customers') }}
            as x_replies_to_customers,
        {{ unless_missing('x', 'own_posts_daily.x_retweets') }} as x_retweets,
        {{ unless_missing('x', 'mentions_daily.x_mentions') }} as x_mentions,
        {{ unless_missing('x', 'mentions_daily.x_mentions_answered') }} as x_mentions_answered,
        {{ unless_missing('x', 'mentions_daily.x_mentions_waiting') }} as x_mentions_waiting,
        {{ unless_missing('x', 'mentions_daily.x_mentions_needing_answer') }}
            as x_mentions_needing_answer,
        {{ unless_missing('x', 'mentions_daily.x_mentions_needing_answer_answered') }}
            as x_mentions_needing_answer_answered,
        {{ unless_missing('x', 'mentions_daily.x_mentions_needing_answer_waiting') }}
            as x_mentions_needing_answer_waiting,
        {{ unless_missing('x', 'mentions_daily.x_mentions_needing_answer_within_target') }}
            as x_mentions_needing_answer_within_target,
        {{ unless_missing('x', 'mentions_daily.x_mentions_target_breached') }}
            as x_mentions_target_breached,
        {{ unless_missing('support_site', 'support_site_days.page_views') }} as support_requests,
        {{ unless_missing('support_site', 'support_site_days.sessions') }} as support_sessions,
        {{ unless_missing('support_site', 'support_site_days.bot_page_views') }} as bot_page_views,
        {{ unless_missing('support_site', 'support_site_days.behaviour_bot_page_views') }}
            as behaviour_bot_page_views,
        {{ unless_missing('support_site', 'support_site_days.internal_page_views') }}
            as internal_page_views,
        {{ unless_missing('support_site', 'support_site_days.social_sessions') }}
            as social_sessions,
        {{ unless_missing('support_site', 'support_site_days.x_referred_sessions') }}
            as x_referred_sessions,
        {{ unless_missing('support_site', 'support_site_days.facebook_sessions') }}
            as facebook_sessions,
        {{ unless_missing('support_site', 'support_site_days.linkedin_sessions') }}
            as linkedin_sessions,
        {{ unless_missing('support_site', 'support_site_days.other_social_sessions') }}
            as other_social_sessions,
        {{ unless_missing('support_site', 'support_site_days.search_sessions') }}
            as search_sessions,
        {{ unless_missing('support_site', 'support_site_days.own_site_sessions') }}
            as own_site_sessions,
        {{ unless_missing('support_site', 'support_site_days.email_sessions') }} as email_sessions,
        {{ unless_missing('support_site', 'support_site_days.ai_assistant_sessions') }}
            as ai_assistant_sessions,
        {{ unless_missing('support_site', 'support_site_days.direct_sessions') }}
            as direct_sessions,
        {{ unless_missing('support_site', 'support_site_days.internal_sessions') }}
            as internal_sessions,
        {{ unless_missing('support_site', 'support_site_days.other_sessions') }} as other_sessions,
        {{ coverage_status('x') }} as x_status,
        {{ coverage_status('support_site') }} as support_site_status,
        {{ coverage_status('x') }} = 'complete'
        and {{ coverage_status('support_site') }} = 'complete' as is_complete

    from days
    left join own_posts_daily
        on days.date_day = own_posts_daily.date_day
    left join mentions_daily
        on days.date_day = mentions_daily.date_day
    left join support_site_days
        on days.date_day = support_site_days.date_day
    left join coverage
        on days.date_day = coverage.date_day

)

select * from final
