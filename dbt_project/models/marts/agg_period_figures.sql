{#-
    The period figures, defined once (agg_period_figures.yml says how incomplete days count):
    the headline, the report and the Superset dashboard read them from here.
-#}

with

daily as (

    select * from {{ ref('agg_daily_engagement') }}

),

account_daily as (

    select * from {{ ref('agg_daily_account_engagement') }}

),

mentions as (

    select * from {{ ref('fct_x_mentions') }}

),

dm_requests as (

    select * from {{ ref('fct_x_dm_requests') }}

),

account_dm_days as (

    select * from {{ ref('agg_daily_account_dm_care') }}

),

grains as (

    select grain_names.grain
    from (values ('period'), ('month'), ('week'), ('day')) as grain_names (grain)

),

-- each day of the mart in the period of each grain that holds it
day_periods as (

    select
        grains.grain,
        daily.date_day,
        daily.x_status,
        daily.support_site_status,
        daily.is_complete,
        case grains.grain
            when 'period' then min(daily.date_day) over ()
            when 'month' then cast(date_trunc('month', daily.date_day) as date)
            when 'week' then cast(date_trunc('week', daily.date_day) as date)
            else daily.date_day
        end as period_start

    from daily
    cross join grains

),

period_coverage as (

    select
        grain,
        period_start,
        min(date_day) as first_day,
        max(date_day) as last_day,
        count(*) as period_days,
        count(*) filter (where not is_complete) as incomplete_days,
        count(*) filter (where x_status not in ('missing', 'refused')) as x_days,
        count(*) filter (where x_status = 'partial') as x_partial_days,
        count(*) filter (where x_status in ('missing', 'refused')) as x_absent_days,
        count(*) filter (
            where support_site_status not in ('missing', 'refused')
        ) as support_site_days,
        count(*) filter (where support_site_status = 'partial') as support_site_partial_days,
        count(*) filter (
            where support_site_status in ('missing', 'refused')
        ) as support_site_absent_days

    from day_periods
    group by grain, period_start

),

-- the company's days and each account's days: their X output (null on absent days)
scoped_posts as (

    select
        date_day,
        'company' as scope,
        cast(null as string) as account_username,
        x_posts as broadcast_posts,
        x_replies_to_customers as replies_to_customers

    from daily

    union all

    select
        date_day,
        'account' as scope,
        account_username,
        posts as broadcast_posts,
        replies_to_customers

    from account_daily

),

period_posts as (

    select
        day_periods.grain,
        day_periods.period_start,
        scoped_posts.scope,
        scoped_posts.account_username,
        cast(sum(scoped_posts.broadcast_posts) as bigint) as broadcast_posts,
        cast(sum(scoped_posts.replies_to_customers) as bigint) as replies_to_customers

    from scoped_posts
    inner join day_periods
        on scoped_posts.date_day = day_periods.date_day
    group by all

),

-- a mention counts for the company and for its primary account, on the days X has data
scoped_mentions as (

    select
        created_date,
        'company' as scope,
        cast(null as string) as account_username,
        needs_answer,
        answer_status,
        is_answered,
        first_response_minutes,
        first_response_business_minutes,
        is_answered_within_target,
        is_target_breached

    from mentions

    union all

    select
        created_date,
        'account' as scope,
        mentioned_account_username as account_username,
        needs_answer,
        answer_status,
        is_answered,
        first_response_minutes,
        first_response_business_minutes,
        is_answered_within_target,
        is_target_breached

    from mentions

),

period_mentions as (

    select
        day_periods.grain,
        day_periods.period_start,
        scoped_mentions.scope,
        scoped_mentions.account_username,
        {{ mention_counts(rel='scoped_mentions.') }},
        median(scoped_mentions.first_response_minutes) filter (
            where scoped_mentions.needs_answer and scoped_mentions.is_answered
        ) as median_first_response_minutes,
        median(scoped_mentions.first_response_minutes) filter (
            where scoped_mentions.is_answered
        ) as median_first_response_minutes_all_mentions,
        {{ quantile_cont('scoped_mentions.first_response_minutes', 0.9) }} filter (
            where scoped_mentions.needs_answer and scoped_mentions.is_answered
        ) as p90_first_response_minutes,
        median(scoped_mentions.first_response_business_minutes) filter (
            where scoped_mentions.needs_answer and scoped_mentions.is_answered
        ) as median_first_response_business_minutes,
        {{ quantile_cont('scoped_mentions.first_response_business_minutes', 0.9) }} filter (
            where scoped_mentions.needs_answer and scoped_mentions.is_answered
        ) as p90_first_response_business_minutes

    from scoped_mentions
    inner join day_periods
        on scoped_mentions.created_date = day_periods.date_day
    where day_periods.x_status not in ('missing', 'refused')
    group by all

),

-- the days an account's DMs are known (agg_daily_account_dm_care: read by every X batch of
-- the day, X not absent): for the account, and as account-days for the company
scoped_dm_days as (

    select
        date_day,
        'company' as scope,
        cast(null as string) as account_username,
        account_username as dm_account_username,
        dm_requests is not null as is_dm_known

    from account_dm_days

    union all

    select
        date_day,
        'account' as scope,
        account_username,
        account_username as dm_account_username,
        dm_requests is not null as is_dm_known

    from account_dm_days

),

period_dm_days as (

    select
        day_periods.grain,
        day_periods.period_start,
        scoped_dm_days.scope,
        scoped_dm_days.account_username,
        count(*) filter (where scoped_dm_days.is_dm_known) as dm_known_days

    from scoped_dm_days
    inner join day_periods
        on scoped_dm_days.date_day = day_periods.date_day
    group by all

),

-- a DM request counts on its day when that day of its account's DMs is known
scoped_dm_requests as (

    select
        scoped_dm_days.date_day,
        scoped_dm_days.scope,
        scoped_dm_days.account_username,
        dm_requests.is_answered,
        dm_requests.is_waiting,
        dm_requests.is_answered_within_target,
        dm_requests.is_target_breached,
        dm_requests.first_response_minutes,
        dm_requests.first_response_business_minutes

    from dm_requests
    inner join scoped_dm_days
        on
            dm_requests.account_username = scoped_dm_days.dm_account_username
            and dm_requests.requested_date = scoped_dm_days.date_day
            and scoped_dm_days.is_dm_known

),

period_dm_requests as (

    select
        day_periods.grain,
        day_periods.period_start,
        scoped_dm_requests.scope,
        scoped_dm_requests.account_username,
        {{ dm_request_counts(rel='scoped_dm_requests.') }},
        median(scoped_dm_requests.first_response_minutes) filter (
            where scoped_dm_requests.is_answered
        ) as median_dm_first_response_minutes,
        median(scoped_dm_requests.first_response_business_minutes) filter (
            where scoped_dm_requests.is_answered
        ) as median_dm_first_response_business_minutes

    from scoped_dm_requests
    inner join day_periods
        on scoped_dm_requests.date_day = day_periods.date_day
    group by all

),

-- the support site's sessions, of the company only (null on absent days)
period_sessions as (

    select
        day_periods.grain,
        day_periods.period_start,
        cast(sum(daily.support_sessions) as bigint) as support_sessions,
        cast(sum(daily.social_sessions) as bigint) as social_sessions,
        cast(sum(daily.x_referred_sessions) as bigint) as x_referred_sessions,
        cast(sum(daily.facebook_sessions) as bigint) as facebook_sessions,
        cast(sum(daily.linkedin_sessions) as bigint) as linkedin_sessions,
        cast(sum(daily.other_social_sessions) as bigint) as other_social_sessions,
        cast(sum(daily.own_site_sessions) as bigint) as own_site_sessions,
        cast(sum(daily.search_sessions) as bigint) as search_sessions,
        cast(sum(daily.email_sessions) as bigint) as email_sessions,
        cast(sum(daily.ai_assistant_sessions) as bigint) as ai_assistant_sessions,
        cast(sum(daily.direct_sessions) as bigint) as direct_sessions,
        cast(sum(daily.internal_sessions) as bigint) as internal_sessions,
        cast(sum(daily.other_sessions) as bigint) as other_sessions

    from daily
    inner join day_periods
        on daily.date_day = day_periods.date_day
    group by day_periods.grain, day_periods.period_start

),

joined as (

    select
        period_posts.grain,
        period_posts.period_start,
        period_coverage.first_day,
        period_coverage.last_day,
        period_posts.scope,
        period_posts.account_username,
        period_coverage.period_days,
        period_coverage.incomplete_days,
        period_coverage.x_days,
        period_coverage.x_partial_days,
        period_coverage.x_absent_days,
        period_coverage.support_site_days,
        period_coverage.support_site_partial_days,
        period_coverage.support_site_absent_days,
        period_posts.broadcast_posts,
        period_posts.replies_to_customers,
        period_mentions.median_first_response_minutes,
        period_mentions.median_first_response_minutes_all_mentions,
        period_mentions.p90_first_response_minutes,
        period_mentions.median_first_response_business_minutes,
        period_mentions.p90_first_response_business_minutes,
        period_sessions.support_sessions,
        period_sessions.social_sessions,
        period_sessions.x_referred_sessions,
        period_sessions.facebook_sessions,
        period_sessions.linkedin_sessions,
        period_sessions.other_social_sessions,
        period_sessions.own_site_sessions,
        period_sessions.search_sessions,
        period_sessions.email_sessions,
        period_sessions.ai_assistant_sessions,
        period_sessions.direct_sessions,
        period_sessions.internal_sessions,
        period_sessions.other_sessions,
        case
            when period_coverage.x_days > 0 then coalesce(period_mentions.mentions, 0)
        end as mentions,
        case
            when period_coverage.x_days > 0 then coalesce(period_mentions.mentions_answered, 0)
        end as mentions_answered,
        case
            when period_coverage.x_days > 0 then coalesce(period_mentions.mentions_waiting, 0)
        end as mentions_waiting,
        case
            when period_coverage.x_days > 0
                then coalesce(period_mentions.mentions_needing_answer, 0)
        end as mentions_needing_answer,
        case
            when period_coverage.x_days > 0
                then coalesce(period_mentions.mentions_needing_answer_answered, 0)
        end as mentions_needing_answer_answered,
        case
            when period_coverage.x_days > 0
                then coalesce(period_mentions.mentions_needing_answer_waiting, 0)
        end as mentions_needing_answer_waiting,
        case
            when period_coverage.x_days > 0
                then coalesce(period_mentions.mentions_needing_answer_within_target, 0)
        end as mentions_needing_answer_within_target,
        case
            when period_coverage.x_days > 0
                then coalesce(period_mentions.mentions_target_breached, 0)
        end as mentions_target_breached,
        coalesce(period_dm_days.dm_known_days, 0) as dm_known_days,
        case
            when period_dm_days.dm_known_days > 0
                then coalesce(period_dm_requests.dm_requests, 0)
        end as dm_requests,
        case
            when period_dm_days.dm_known_days > 0
                then coalesce(period_dm_requests.dm_requests_answered, 0)
        end as dm_requests_answered,
        case
            when period_dm_days.dm_known_days > 0
                then coalesce(period_dm_requests.dm_requests_waiting, 0)
        end as dm_requests_waiting,
        case
            when period_dm_days.dm_known_days > 0
                then coalesce(period_dm_requests.dm_requests_within_target, 0)
        end as dm_requests_within_target,
        case
            when period_dm_days.dm_known_days > 0
                then coalesce(period_dm_requests.dm_requests_target_breached, 0)
        end as dm_requests_target_breached,
        period_dm_requests.median_dm_first_response_minutes,
        period_dm_requests.median_dm_first_response_business_minutes

    from period_posts
    inner join period_coverage
        on
            period_posts.grain = period_coverage.grain
            and period_posts.period_start = period_coverage.period_start
    left join period_mentions
        on
            period_posts.grain = period_mentions.grain
            and period_posts.period_start = period_mentions.period_start
            and period_posts.scope = period_mentions.scope
            and period_posts.account_username
            is not distinct from period_mentions.account_username
    left join period_dm_days
        on
            period_posts.grain = period_dm_days.grain
            and period_posts.period_start = period_dm_days.period_start
            and period_posts.scope = period_dm_days.scope
            and period_posts.account_username
            is not distinct from period_dm_days.account_username
    left join period_dm_requests
        on
            period_posts.grain = period_dm_requests.grain
            and period_posts.period_start = period_dm_requests.period_start
            and period_posts.scope = period_dm_requests.scope
            and period_posts.account_username
            is not distinct from period_dm_requests.account_username
    left join period_sessions
        on
            period_posts.grain = period_sessions.grain
            and period_posts.period_start = period_sessions.period_start
            and period_posts.scope = 'company'

),

final as (

    select
        grain,
        period_start,
        first_day,
        last_day,
        scope,
        account_username,
        period_days,
        incomplete_days,
        x_days,
        x_partial_days,
        x_absent_days,
        support_site_days,
        support_site_partial_days,
        support_site_absent_days,
        broadcast_posts,
        replies_to_customers,
        broadcast_posts + replies_to_customers as output_posts,
        replies_to_customers / nullif(broadcast_posts + replies_to_customers, 0)
            as conversation_share,
        mentions_needing_answer,
        mentions_needing_answer_answered,
        mentions_needing_answer_waiting,
        mentions_needing_answer_answered
        / nullif(mentions_needing_answer - mentions_needing_answer_waiting, 0) as response_rate,
        cast(median_first_response_minutes as double) as median_first_response_minutes,
        cast(p90_first_response_minutes as double) as p90_first_response_minutes,
        cast(median_first_response_business_minutes as double)
            as median_first_response_business_minutes,
        cast(p90_first_response_business_minutes as double)
            as p90_first_response_business_minutes,
        mentions_needing_answer_within_target,
        mentions_needing_answer_within_target / nullif(mentions_needing_answer_answered, 0)
            as within_target_rate,
        mentions_target_breached,
        mentions,
        mentions_answered,
        mentions_waiting,
        mentions_answered / nullif(mentions - mentions_waiting, 0) as response_rate_all_mentions,
        cast(median_first_response_minutes_all_mentions as double)
            as median_first_response_minutes_all_mentions,
        support_sessions,
        social_sessions,
        social_sessions / nullif(support_sessions, 0) as social_share,
        x_referred_sessions,
        facebook_sessions,
        linkedin_sessions,
        other_social_sessions,
        x_referred_sessions / nullif(support_sessions, 0) as x_referred_share,
        facebook_sessions / nullif(support_sessions, 0) as facebook_share,
        linkedin_sessions / nullif(support_sessions, 0) as linkedin_share,
        other_social_sessions / nullif(support_sessions, 0) as other_social_share,
        own_site_sessions,
        own_site_sessions / nullif(support_sessions, 0) as own_site_share,
        social_sessions / nullif(own_site_sessions, 0) as social_to_own_site,
        search_sessions,
        email_sessions,
        ai_assistant_sessions,
        direct_sessions,
        internal_sessions,
        other_sessions,
        dm_known_days,
        dm_requests,
        dm_requests_answered,
        dm_requests_waiting,
        {{ response_rate('dm_requests_answered', 'dm_requests', 'dm_requests_waiting') }}
            as dm_response_rate,
        cast(median_dm_first_response_minutes as double) as median_dm_first_response_minutes,
        cast(median_dm_first_response_business_minutes as double)
            as median_dm_first_response_business_minutes,
        dm_requests_within_target,
        dm_requests_target_breached

    from joined

)

select * from final
