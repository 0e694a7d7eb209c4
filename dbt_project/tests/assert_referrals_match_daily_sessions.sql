-- every session of agg_daily_engagement is in exactly one agg_daily_referrals row, and the
-- page views of the sessions add up to at least the sessions
with

daily as (

    select * from {{ ref('agg_daily_engagement') }}

),

referrals as (

    select
        date_day,
        sum(sessions) as sessions,
        sum(page_views) as page_views

    from {{ ref('agg_daily_referrals') }}
    group by date_day

),

compared as (

    select
        daily.date_day,
        daily.support_sessions,
        coalesce(referrals.sessions, 0) as referral_sessions,
        coalesce(referrals.page_views, 0) as referral_page_views

    from daily
    left join referrals
        on daily.date_day = referrals.date_day

)

select * from compared
where
    support_sessions != referral_sessions
    or referral_page_views < referral_sessions
