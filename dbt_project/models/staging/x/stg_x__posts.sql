{#-
    One row per raw row (no de-duplication here). The payload may use the Tweet vocabulary
    (referenced_tweets, edit_history_tweet_ids) or the Post vocabulary (referenced_posts,
    edit_history_post_ids); whichever is present as an array is used.
-#}

with

source as (

    select * from {{ source('x', 'posts') }}

),

vocabulary as (

    select
        *,
        case
            when json_type(payload, '$.referenced_posts') = 'ARRAY'
                then json_extract(payload, '$.referenced_posts')
            else json_extract(payload, '$.referenced_tweets')
        end as referenced_posts,
        case
            when json_type(payload, '$.edit_history_post_ids') = 'ARRAY'
                then json_extract(payload, '$.edit_history_post_ids')
            else json_extract(payload, '$.edit_history_tweet_ids')
        end as edit_history

    from source

),

references_listed as (

    select
        *,
        json_extract_string(referenced_posts, '$[*].type') as referenced_types,
        json_extract_string(referenced_posts, '$[*].id') as referenced_ids

    from vocabulary

),

renamed as (

    select
        batch_id,
        interval_start,
        interval_end,
        account_username,
        account_id,
        endpoint,
        coalesce(post_id, json_extract_string(payload, '$.id')) as post_id,
        json_extract_string(payload, '$.author_id') as author_id,
        try_strptime(
            json_extract_string(payload, '$.created_at'),
            ['%Y-%m-%dT%H:%M:%S.%gZ', '%Y-%m-%dT%H:%M:%SZ']
        ) as created_at,
        json_extract_string(payload, '$.text') as post_text,
        json_extract_string(payload, '$.lang') as lang,
        json_extract_string(payload, '$.conversation_id') as conversation_id,
        json_extract_string(payload, '$.in_reply_to_user_id') as in_reply_to_user_id,
        referenced_ids[list_position(referenced_types, 'replied_to')] as replied_to_post_id,
        referenced_ids[list_position(referenced_types, 'quoted')] as quoted_post_id,
        referenced_ids[list_position(referenced_types, 'retweeted')] as retweeted_post_id,
        coalesce(
            json_extract_string(payload, '$.entities.mentions[*].id'), []
        ) as mentioned_user_ids,
        -- usernames are case-insensitive on X; the mention objects' keys are lowercase already
        coalesce(
            json_extract_string(
                lower(cast(json_extract(payload, '$.entities.mentions') as varchar)),
                '$[*].username'
            ),
            []
        ) as mentioned_usernames,
        coalesce(json_extract_string(edit_history, '$[*]'), []) as edit_history_post_ids,
        coalesce(len(json_extract_string(edit_history, '$[*]')), 0) as edit_history_count,
        cast(json_extract(payload, '$.public_metrics.retweet_count') as bigint) as retweet_count,
        cast(json_extract(payload, '$.public_metrics.reply_count') as bigint) as reply_count,
        cast(json_extract(payload, '$.public_metrics.like_count') as bigint) as like_count,
        cast(json_extract(payload, '$.public_metrics.quote_count') as bigint) as quote_count,
        cast(json_extract(payload, '$.public_metrics.bookmark_count') as bigint) as bookmark_count,
        cast(
            json_extract(payload, '$.public_metrics.impression_count') as bigint
        ) as impression_count,
        payload,
        _loaded_at

    from references_listed

)

select * from renamed
