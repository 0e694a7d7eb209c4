with

days as (

    select * from {{ ref('int_date_spine') }}

),

posts as (

    select * from {{ ref('int_x__posts_classified') }}

),

mentions as (

    select * from {{ ref('int_x__mentions_responses') }}

),

requests as (

    select * from {{ ref('int_support_site__requests_classified') }}

),

sessions as (

    select * from {{ ref('int_support_site__sessions') }}

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

page_views_daily as (

    select
        requested_date as date_day,
        count(*) as support_requests

    from requests
    where is_page_view
    group by requested_date

),

sessions_daily as (

    select
        session_date as date_day,
        count(*) as support_sessions,
        count(*) filter (where channel = 'social') as social_sessions,
        count(*) filter (
            where channel = 'social' and referrer_network = 'Twitter'
        ) as x_referred_sessions,
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
        coalesce(page_views_daily.support_requests, 0) as support_requests,
        coalesce(sessions_daily.support_sessions, 0) as support_sessions,
        coalesce(sessions_daily.social_sessions, 0) as social_sessions,
        coalesce(sessions_daily.x_referred_sessions, 0) as x_referred_sessions,
        coalesce(sessions_daily.search_sessions, 0) as search_sessions,
        coalesce(sessions_daily.own_site_sessions, 0) as own_site_sessions,
        coalesce(sessions_daily.email_sessions, 0) as email_sessions,
        coalesce(sessions_daily.ai_assistant_sessions, 0) as ai_assistant_sessions,
        coalesce(sessions_daily.direct_sessions, 0) as direct_sessions,
        coalesce(sessions_daily.internal_sessions, 0) as internal_sessions,
        coalesce(sessions_daily.other_sessions, 0) as other_sessions

    from days
    left join own_posts_daily
        on days.date_day = own_posts_daily.date_day
    left join mentions_daily
        on days.date_day = mentions_daily.date_day
    left join page_views_daily
        on days.date_day = page_views_daily.date_day
    left join sessions_daily
        on days.date_day = sessions_daily.date_day

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
