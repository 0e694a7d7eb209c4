{#-
    One row per own post (edit root) with at least one private-metrics snapshot: the link
    clicks X counted (its latest snapshot) beside the support-site sessions credited to the
    post (fct_x_post_attributed_sessions: t.co sessions landing on a path the post links,
    within 24 hours of it, the most recent such post credited).

    - sessions_per_link_click = attributed_sessions / url_link_clicks, null without clicks.
    - link_clicks_without_session = url_link_clicks - attributed_sessions. Positive: clicks
      X counted whose visit never reached the support site as a credited session (tabs
      closed before the page loaded, referrers stripped, bots filtered, the visit credited to
      a newer post linking the same page, or more than 24 hours after the post). Negative:
      more sessions credited than clicks counted: the credit is by landing path and time,
      so visits through someone else's share of the same link, or sessions after the latest
      snapshot, are credited to the post too.
    - is_final: no later snapshot will change the figures: the latest snapshot was taken
      when the version served was at least 29 days old, or the account's newest snapshot
      of any post was taken 30 days or more after it (X no longer serves its private
      metrics: the latest snapshot is the last there will be).

    A plain table rebuilt by every build that takes in X data (see macros/incremental.sql).
-#}

with

daily as (

    select * from {{ ref('int_x__post_private_metrics_daily') }}

),

attributed as (

    select * from {{ ref('fct_x_post_attributed_sessions') }}

),

posts as (

    select * from {{ ref('int_x__posts_classified') }}

),

accounts as (

    select * from {{ ref('int_x__accounts') }}

),

latest as (

    select
        *,
        count(*) over (partition by post_id) as snapshot_days,
        max(observed_at) over (partition by account_id) as account_last_observed_at,
        row_number() over (partition by post_id order by observed_at desc) as recency_rank

    from daily

),

sessions as (

    select
        post_id,
        count(*) as attributed_sessions

    from attributed
    group by post_id

),

final as (

    select
        latest.post_id,
        latest.account_id,
        coalesce(accounts.account_username, latest.account_username) as account_username,
        coalesce(posts.created_at, latest.version_created_at) as created_at,
        cast(coalesce(posts.created_at, latest.version_created_at) as date) as created_date,
        latest.version_id as latest_version_id,
        latest.observed_at as latest_snapshot_at,
        latest.age_days as latest_snapshot_age_days,
        latest.snapshot_days,
        latest.impression_count,
        latest.url_link_clicks,
        latest.user_profile_clicks,
        coalesce(sessions.attributed_sessions, 0) as attributed_sessions,
        cast(coalesce(sessions.attributed_sessions, 0) as double)
        / nullif(latest.url_link_clicks, 0) as sessions_per_link_click,
        latest.url_link_clicks - coalesce(sessions.attributed_sessions, 0)
            as link_clicks_without_session,
        (
            latest.observed_at >= latest.version_created_at + interval 29 day
            or latest.account_last_observed_at >= latest.version_created_at + interval 30 day
        ) as is_final

    from latest
    left join sessions
        on latest.post_id = sessions.post_id
    left join posts
        on latest.post_id = posts.post_id
    left join accounts
        on latest.account_id = accounts.account_id
    where latest.recency_rank = 1

)

select * from final
