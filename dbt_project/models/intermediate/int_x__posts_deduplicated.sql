{#- One row per post id. The same post arrives many times (pages, batches, timeline and
    mentions); keep the version from the latest interval_end, then the latest _loaded_at,
    then the longest edit history, then fixed tie-breakers so the choice is deterministic. -#}

with

posts as (

    select * from {{ ref('stg_x__posts') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by post_id
            order by
                interval_end desc,
                _loaded_at desc,
                edit_history_count desc,
                batch_id desc,
                endpoint desc,
                account_username asc,
                cast(payload as varchar) asc
        ) as version_rank

    from posts
    where post_id is not null

),

final as (

    select
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
        endpoint as source_endpoint,
        account_username as source_account_username,
        batch_id as source_batch_id

    from ranked
    where version_rank = 1

)

select * from final
