{#-
    Every de-duplicated post (one row per edit root) with its type and whether a company
    account wrote it.

    post_type, first match wins: retweet (references a retweeted post), reply (references a
    replied_to post or has in_reply_to_user_id), quote (references a quoted post), original.
    reply_to_customer: an own reply whose in_reply_to_user_id is set and is not an own
    account (replies in the company's own threads are conversation with itself).

    A plain table rebuilt by every build that takes in X data (see macros/incremental.sql).
-#}

with

posts as (

    select * from {{ ref('int_x__posts_deduplicated') }}

),

accounts as (

    select * from {{ ref('int_x__accounts') }}

),

users as (

    select * from {{ ref('int_x__users') }}

),

typed as (

    select
        *,
        case
            when retweeted_post_id is not null then 'retweet'
            when replied_to_post_id is not null or in_reply_to_user_id is not null then 'reply'
            when quoted_post_id is not null then 'quote'
            else 'original'
        end as post_type

    from posts

),

joined as (

    select
        typed.*,
        users.username as author_username,
        author_account.account_id is not null as is_own,
        replied_account.account_id is not null as is_reply_to_own_account

    from typed
    left join accounts as author_account
        on typed.author_id = author_account.account_id
    left join accounts as replied_account
        on typed.in_reply_to_user_id = replied_account.account_id
    left join users
        on typed.author_id = users.user_id

),

final as (

    select
        post_id,
        author_id,
        author_username,
        created_at,
        cast(created_at as date) as created_date,
        post_type,
        is_own,
        (
            is_own
            and post_type = 'reply'
            and in_reply_to_user_id is not null
            and not is_reply_to_own_account
        ) as is_reply_to_customer,
        is_reply_to_own_account,
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
        metrics_observed_at,
        source_endpoint,
        latest_version_id,
        latest_version_created_at,
        replied_to_version_id,
        version_ids,
        edit_count,
        is_edited,
        is_deleted,
        deleted_seen_at,
        last_seen_at

    from joined

)

select * from final
