-- the page requests agg_daily_engagement leaves out are those agg_daily_excluded_traffic
-- explains, kind by kind, on every day the support site's data is there
with

daily as (

    select * from {{ ref('agg_daily_engagement') }}
    where support_site_status not in ('missing', 'refused')

),

excluded as (

    select
        date_day,
        sum(page_views) filter (where exclusion_rule != 'internal_traffic') as bot_page_views,
        sum(page_views) filter (where exclusion_rule = 'behaviour') as behaviour_bot_page_views,
        sum(page_views) filter (where exclusion_rule = 'internal_traffic') as internal_page_views

    from {{ ref('agg_daily_excluded_traffic') }}
    group by date_day

),

compared as (

    select
        daily.date_day,
        daily.bot_page_views,
        daily.behaviour_bot_page_views,
        daily.internal_page_views,
        coalesce(excluded.bot_page_views, 0) as excluded_bot_page_views,
        coalesce(excluded.behaviour_bot_page_views, 0) as excluded_behaviour_bot_page_views,
        coalesce(excluded.internal_page_views, 0) as excluded_internal_page_views

    from daily
    left join excluded
        on daily.date_day = excluded.date_day

)

select * from compared
where
    bot_page_views != excluded_bot_page_views
    or behaviour_bot_page_views != excluded_behaviour_bot_page_views
    or internal_page_views != excluded_internal_page_views
