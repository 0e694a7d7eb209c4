{#-
    One row per raw row of x.post_private_metrics (not de-duplicated): a snapshot of an own
    post's private metrics, the metrics as columns. root_post_id is the first id of the
    post's edit history as served (itself when never edited).
-#}

with

source as (

    select * from {{ source('x', 'post_private_metrics') }}

),

renamed as (

    select
        batch_id,
        interval_start,
        interval_end,
        account_username,
        lower(account_username) as account_username_lower,
        account_id,
        coalesce(post_id, {{ json_text('payload', '$.id') }}) as post_id,
        coalesce(
            {{ json_text('payload', '$.edit_history_tweet_ids[0]') }},
            post_id,
            {{ json_text('payload', '$.id') }}
        ) as root_post_id,
        {{ json_text('payload', '$.author_id') }} as author_id,
        {{ parse_x_timestamp(json_text('payload', '$.created_at')) }} as created_at,
        observed_at,
        try_cast(
            {{ json_fragment('payload', '$.non_public_metrics.impression_count') }} as bigint
        ) as impression_count,
        try_cast(
            {{ json_fragment('payload', '$.non_public_metrics.url_link_clicks') }} as bigint
        ) as url_link_clicks,
        try_cast(
            {{ json_fragment('payload', '$.non_public_metrics.user_profile_clicks') }} as bigint
        ) as user_profile_clicks,
        try_cast(
            {{ json_fragment('payload', '$.organic_metrics.impression_count') }} as bigint
        ) as organic_impression_count,
        try_cast(
            {{ json_fragment('payload', '$.organic_metrics.like_count') }} as bigint
        ) as organic_like_count,
        try_cast(
            {{ json_fragment('payload', '$.organic_metrics.reply_count') }} as bigint
        ) as organic_reply_count,
        try_cast(
            {{ json_fragment('payload', '$.organic_metrics.retweet_count') }} as bigint
        ) as organic_retweet_count,
        try_cast(
            {{ json_fragment('payload', '$.organic_metrics.url_link_clicks') }} as bigint
        ) as organic_url_link_clicks,
        try_cast(
            {{ json_fragment('payload', '$.organic_metrics.user_profile_clicks') }} as bigint
        ) as organic_user_profile_clicks,
        page_no,
        _loaded_at

    from source

)

select * from renamed
