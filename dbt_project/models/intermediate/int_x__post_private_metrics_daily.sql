{#-
    One row per own post (edit root) and UTC day it was snapshotted: its private metrics as
    of the last snapshot of that day (observed_at: the batch's interval end, the day the
    interval's last; X's own time of the read stays in raw). A post's root is the version
    map's (int_x__post_versions), else the first id of the edit history served with it.
    A post edited on X is served as its latest version: the metrics are that version's.

    A plain table rebuilt by every build that takes in X data (see macros/incremental.sql).
-#}

with

snapshots as (

    select * from {{ ref('stg_x__post_private_metrics') }}

),

versions as (

    select * from {{ ref('int_x__post_versions') }}

),

rooted as (

    select
        coalesce(versions.root_post_id, snapshots.root_post_id) as post_id,
        snapshots.post_id as version_id,
        snapshots.account_id,
        snapshots.account_username,
        snapshots.created_at as version_created_at,
        -- as of the batch's interval end, as public metrics observations are: a rerun or a
        -- backfill reading the same figures later gives the same mart (raw keeps X's time)
        snapshots.interval_end as observed_at,
        cast(snapshots.interval_end - interval 1 microsecond as date) as observed_date,
        snapshots.impression_count,
        snapshots.url_link_clicks,
        snapshots.user_profile_clicks,
        snapshots.organic_impression_count,
        snapshots.organic_url_link_clicks,
        snapshots.organic_user_profile_clicks,
        snapshots.batch_id,
        snapshots.page_no

    from snapshots
    left join versions
        on snapshots.post_id = versions.version_id
    -- as of its interval's end, a version posted after it did not exist yet (a backfill
    -- reads today's posts; the interval it was posted in, or a later one, snapshots it)
    where snapshots.created_at < snapshots.interval_end

),

ranked as (

    select
        *,
        row_number() over (
            partition by post_id, observed_date
            order by observed_at desc, batch_id desc, page_no desc, version_id desc
        ) as day_rank

    from rooted

),

final as (

    select
        post_id,
        observed_date,
        version_id,
        account_id,
        account_username,
        version_created_at,
        observed_at,
        {{ round_double(
            'cast(' ~ date_diff('second', 'version_created_at', 'observed_at') ~ ' as double) / 86400', 2
        ) }} as age_days,
        impression_count,
        url_link_clicks,
        user_profile_clicks,
        organic_impression_count,
        organic_url_link_clicks,
        organic_user_profile_clicks,
        batch_id

    from ranked
    where day_rank = 1

)

select * from final
