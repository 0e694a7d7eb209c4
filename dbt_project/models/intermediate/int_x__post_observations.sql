{#-
    Every time a post object (one version of a post) was received, from a timeline
    (endpoint tweets / mentions) or from the metrics refresh (lookup). observed_at is the
    batch's interval_end: the time the observation stands for. Not de-duplicated.

    Incremental: the rows of the changed X batches replace those of the same batches (a
    batch re-loaded or removed), so the post payloads are parsed once, when they land. The
    post ids of the replaced and of the new rows are recorded (kind x_version) for the
    models after it.
-#}

{{
    config(
        materialized='incremental',
        incremental_strategy='replace_where',
        incremental_predicates=["batch_id in " ~ changed_batches('x')],
        pre_hook="{{ record_changed_keys('x_version', x_version_ids(this)) }}",
        post_hook="{{ record_changed_keys('x_version', x_version_ids(this)) }}",
    )
}}

with

timeline_posts as (

    select * from {{ ref('stg_x__posts') }}
    {% if is_incremental() -%}
        where {{ in_changed_batches('batch_id', 'x') }}
    {%- endif %}

),

snapshots as (

    select * from {{ ref('stg_x__post_snapshots') }}
    {% if is_incremental() -%}
        where {{ in_changed_batches('batch_id', 'x') }}
    {%- endif %}

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
        cast(null as varchar) as account_username,
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
