{#-
    One row per post of a company account, identified by the root of its edit chain: an
    edited post is one row with the content of its newest version and its latest metrics.
    Deleted posts keep their row (they still count as posted that day) with is_deleted set
    and their text nulled, as the platform's terms require.

    A plain table rebuilt by every build that takes in X data (see macros/incremental.sql).
-#}

with

posts as (

    select * from {{ ref('int_x__posts_classified') }}

),

accounts as (

    select * from {{ ref('int_x__accounts') }}

),

own_posts as (

    select * from posts
    where is_own

),

final as (

    select
        own_posts.post_id,
        own_posts.latest_version_id,
        own_posts.author_id as account_id,
        accounts.account_username,
        own_posts.post_type,
        own_posts.is_reply_to_customer,
        own_posts.replied_to_post_id,
        own_posts.quoted_post_id,
        own_posts.retweeted_post_id,
        own_posts.conversation_id,
        own_posts.lang,
        own_posts.post_text,
        own_posts.version_ids,
        own_posts.edit_count,
        own_posts.is_edited,
        own_posts.impression_count,
        own_posts.like_count,
        own_posts.retweet_count,
        own_posts.reply_count,
        own_posts.quote_count,
        own_posts.bookmark_count,
        own_posts.is_deleted,
        own_posts.created_at,
        own_posts.created_date,
        own_posts.latest_version_created_at,
        own_posts.metrics_observed_at,
        own_posts.last_seen_at,
        own_posts.deleted_seen_at

    from own_posts
    inner join accounts
        on own_posts.author_id = accounts.account_id

)

select * from final
