{#-
    One row per post of a company account (edit root) and snapshot time: its public
    metrics as of that time and their growth since the previous snapshot of the post.

    A snapshot is every observation of the post in a batch, dated by the batch's
    interval_end: the metrics refresh (GET /2/tweets, every run, posts of the last 7 days)
    and the timeline read. Per post and time one observation is kept: the newest version's,
    the refresh over the timeline (it is read later in the run), then fixed tie-breakers.
    Growth columns are null on a post's first snapshot; they can be negative (unlikes).

    A plain table rebuilt by every build that takes in X data (see macros/incremental.sql).
-#}

with

observations as (

    select * from {{ ref('int_x__post_observations') }}

),

versions as (

    select * from {{ ref('int_x__post_versions') }}

),

posts as (

    select * from {{ ref('int_x__posts_classified') }}

),

accounts as (

    select * from {{ ref('int_x__accounts') }}

),

own_posts as (

    select
        posts.post_id,
        posts.author_id as account_id,
        accounts.account_username,
        posts.created_at

    from posts
    inner join accounts
        on posts.author_id = accounts.account_id

),

own_observations as (

    select
        versions.root_post_id as post_id,
        observations.post_id as version_id,
        observations.observed_at as snapshot_at,
        observations.observed_via,
        observations.impression_count,
        observations.like_count,
        observations.retweet_count,
        observations.reply_count,
        observations.quote_count,
        observations.bookmark_count,
        row_number() over (
            partition by versions.root_post_id, observations.observed_at
            order by
                {{ numeric_id('observations.post_id') }} desc,
                observations.post_id desc,
                observations.observed_via = 'lookup' desc,
                observations._loaded_at desc,
                observations.batch_id desc,
                observations.observed_via desc,
                observations.account_username asc nulls last,
                cast(observations.payload as string) asc nulls last
        ) as snapshot_rank

    from observations
    inner join versions
        on observations.post_id = versions.version_id
    inner join own_posts
        on versions.root_post_id = own_posts.post_id

),

snapshots as (

    select * from own_observations
    where snapshot_rank = 1

),

with_previous as (

    select
        *,
        cast(row_number() over post_snapshots as bigint) as snapshot_number,
        lag(snapshot_at) over post_snapshots as previous_snapshot_at,
        lag(impression_count) over post_snapshots as previous_impression_count,
        lag(like_count) over post_snapshots as previous_like_count,
        lag(retweet_count) over post_snapshots as previous_retweet_count,
        lag(reply_count) over post_snapshots as previous_reply_count,
        lag(quote_count) over post_snapshots as previous_quote_count,
        lag(bookmark_count) over post_snapshots as previous_bookmark_count

    from snapshots
    window post_snapshots as (partition by post_id order by snapshot_at)

),

final as (

    select
        with_previous.post_id,
        with_previous.version_id,
        own_posts.account_id,
        own_posts.account_username,
        with_previous.observed_via,
        with_previous.snapshot_number,
        with_previous.impression_count,
        with_previous.like_count,
        with_previous.retweet_count,
        with_previous.reply_count,
        with_previous.quote_count,
        with_previous.bookmark_count,
        with_previous.previous_impression_count,
        with_previous.impression_count - with_previous.previous_impression_count
            as impression_growth,
        with_previous.like_count - with_previous.previous_like_count as like_growth,
        with_previous.retweet_count - with_previous.previous_retweet_count as retweet_growth,
        with_previous.reply_count - with_previous.previous_reply_count as reply_growth,
        with_previous.quote_count - with_previous.previous_quote_count as quote_growth,
        with_previous.bookmark_count - with_previous.previous_bookmark_count
            as bookmark_growth,
        cast(
            {{ date_diff('second', 'own_posts.created_at', 'with_previous.snapshot_at') }} as double
        ) / 3600 as hours_since_posting,
        cast({{ date_diff('second', 
            'with_previous.previous_snapshot_at', 'with_previous.snapshot_at'
        ) }} as double) / 3600 as hours_since_previous_snapshot,
        own_posts.created_at,
        with_previous.previous_snapshot_at,
        with_previous.snapshot_at

    from with_previous
    inner join own_posts
        on with_previous.post_id = own_posts.post_id

)

select * from final
