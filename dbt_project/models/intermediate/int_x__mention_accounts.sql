{#-
    One row per (mention, mentioned company account). A mention is a post that is not by a
    company account and is not a retweet, and that either replies to a company account
    (in_reply_to_user_id) or @-mentions one in entities.mentions (matched by user id or,
    case-insensitively, by username). A post mentioning two company accounts gives two rows.

    A plain table rebuilt by every build that takes in X data (see macros/incremental.sql).
-#}

with

posts as (

    select * from {{ ref('int_x__posts_classified') }}

),

accounts as (

    select * from {{ ref('int_x__accounts') }}

),

candidate_posts as (

    select * from posts
    where
        not is_own
        and author_id is not null
        and post_type != 'retweet'

),

matched as (

    select
        candidate_posts.post_id as mention_id,
        candidate_posts.created_at,
        accounts.account_id,
        accounts.account_username,
        candidate_posts.in_reply_to_user_id = accounts.account_id as is_reply_to_account,
        coalesce(
            {{ list_contains('candidate_posts.mentioned_user_ids', 'accounts.account_id') }}
            or {{ list_contains(
                'candidate_posts.mentioned_usernames', 'accounts.account_username_lower'
            ) }},
            false
        ) as is_tagged,
        coalesce(
            {{ list_position(
                'candidate_posts.mentioned_usernames', 'accounts.account_username_lower'
            ) }},
            {{ list_position('candidate_posts.mentioned_user_ids', 'accounts.account_id') }}
        ) as mention_position

    from candidate_posts
    cross join accounts

),

final as (

    select
        mention_id,
        account_id,
        account_username,
        created_at,
        coalesce(is_reply_to_account, false) as is_reply_to_account,
        is_tagged,
        -- the account the mention is primarily addressed to: the one it replies to, else
        -- the first company account tagged in the text, else the alphabetically first
        row_number() over (
            partition by mention_id
            order by
                coalesce(is_reply_to_account, false) desc,
                mention_position asc nulls last,
                account_username asc nulls last
        ) = 1 as is_primary_account

    from matched
    where coalesce(is_reply_to_account, false) or is_tagged

)

select * from final
