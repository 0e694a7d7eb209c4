{#-
    Every time a post object (one version of a post) was received, from a timeline
    (endpoint tweets / mentions) or from the metrics refresh (lookup). observed_at is the
    batch's interval_end: the time the observation stands for. Not de-duplicated.

    A plain table rebuilt by every build that takes in X data (see macros/incremental.sql).
-#}

with

timeline_posts as (

    select * from {{ ref('stg_x__posts') }}

),

snapshots as (

    select * from {{ ref('stg_x__post_snapshots') }}

),

timeline_observations as (

    select
        batch_id,
        interval_end as observed_at,
        endpoint as observed_via,
        account_username,
        post_id,
        author_id,
        created_at,
        post_text,
        lang,
        conversation_id,
        in_reply_to_user_id,
        replied_to_post_id,
        quoted_post_id,
        retweeted_post_id,
        mentioned_user_ids,
        mentioned_usernames,
        edit_history_post_ids,
        edit_history_count,
        retweet_count,
        reply_count,
        like_count,
        quote_count,
        bookmark_count,
        impression_count,
        payload,
        _loaded_at

    from timeline_posts
    where post_id is not null

),

snapshot_observations as (

    select
        batch_id,
        snapshot_at as observed_at,
        'lookup' as observed_via,
        cast(null as string) as account_username,
        post_id,
        author_id,
        created_at,
        post_text,
        lang,
        conversation_id,
        in_reply_to_user_id,
        replied_to_post_id,
        quoted_post_id,
        retweeted_post_id,
        mentioned_user_ids,
        mentioned_usernames,
        edit_history_post_ids,
        edit_history_count,
        retweet_count,
        reply_count,
        like_count,
        quote_count,
        bookmark_count,
        impression_count,
        payload,
        _loaded_at

    from snapshots
    where post_id is not null

),

final as (

    select * from timeline_observations
    union all
    select * from snapshot_observations

)

select * from final
