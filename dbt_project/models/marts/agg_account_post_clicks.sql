{#-
    One row per configured X account: the link clicks X counted on its own posts (private
    metrics, latest snapshots: fct_x_post_clicks) against the support-site sessions credited
    to them. An account whose private metrics were never read (no user-context grant) is
    "not authorised": its figures are null, unknown rather than zero.

    A plain table rebuilt by every build that takes in X data (see macros/incremental.sql).
-#}

with

accounts as (

    select * from {{ ref('int_x__accounts') }}

),

access as (

    select
        account_username_lower,
        bool_or(is_metrics_authorised) as is_metrics_authorised

    from {{ ref('stg_x__metrics_access') }}
    group by account_username_lower

),

clicks as (

    select
        account_id,
        count(*) as posts_snapshotted,
        count(*) filter (where url_link_clicks > 0) as posts_with_link_clicks,
        cast(sum(url_link_clicks) as bigint) as url_link_clicks,
        cast(sum(attributed_sessions) as bigint) as attributed_sessions,
        max(latest_snapshot_at) as latest_snapshot_at

    from {{ ref('fct_x_post_clicks') }}
    group by account_id

),

final as (

    select
        accounts.account_id,
        accounts.account_username,
        coalesce(access.is_metrics_authorised, false) or clicks.account_id is not null
            as is_metrics_authorised,
        case
            when coalesce(access.is_metrics_authorised, false) or clicks.account_id is not null
                then 'authorised'
            else 'not authorised'
        end as metrics_access,
        clicks.latest_snapshot_at,
        clicks.posts_snapshotted,
        clicks.posts_with_link_clicks,
        clicks.url_link_clicks,
        clicks.attributed_sessions,
        cast(clicks.attributed_sessions as double)
        / nullif(clicks.url_link_clicks, 0) as sessions_per_link_click

    from accounts
    left join access
        on accounts.account_username_lower = access.account_username_lower
    left join clicks
        on accounts.account_id = clicks.account_id

)

select * from final
