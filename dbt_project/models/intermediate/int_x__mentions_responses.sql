{#-
    One row per mention (see int_x__mention_accounts) with whether a company account
    answered it: answered = some company account replied to it (its replied_to reference,
    mapped to the edit root, is the mention's id: a reply to any version of an edited
    mention counts), at any time in the data. The first response is the earliest such
    reply (ties broken by post id); first_response_minutes = (first_response_at -
    created_at) in minutes, with second precision.

    A plain table rebuilt by every build that takes in X data (see macros/incremental.sql).
-#}

with

mention_accounts as (

    select * from {{ ref('int_x__mention_accounts') }}

),

posts as (

    select * from {{ ref('int_x__posts_classified') }}

),

mentions as (

    select
        mention_id,
        min(created_at) as created_at,
        max(case when is_primary_account then account_id end) as mentioned_account_id,
        max(case when is_primary_account then account_username end)
            as mentioned_account_username,
        string_agg(account_username, ',' order by account_username) as mentioned_account_usernames,
        count(*) as mentioned_account_count,
        bool_or(is_reply_to_account) as is_reply_to_account

    from mention_accounts
    group by mention_id

),

own_replies as (

    select
        post_id as response_id,
        replied_to_post_id,
        author_id as responder_id,
        author_username as responder_username,
        created_at as responded_at,
        row_number() over (
            partition by replied_to_post_id
            order by created_at asc, post_id asc
        ) as response_rank

    from posts
    where
        is_own
        and post_type = 'reply'
        and replied_to_post_id is not null

),

first_responses as (

    select * from own_replies
    where response_rank = 1

),

mention_details as (

    select
        post_id,
        author_id,
        author_username,
        conversation_id,
        post_text,
        is_deleted

    from posts

),

final as (

    select
        mentions.mention_id,
        mentions.created_at,
        cast(mentions.created_at as date) as created_date,
        mention_details.author_id,
        mention_details.author_username,
        mention_details.conversation_id,
        mention_details.post_text as mention_text,
        mentions.mentioned_account_id,
        mentions.mentioned_account_username,
        mentions.mentioned_account_usernames,
        mentions.mentioned_account_count,
        mentions.is_reply_to_account,
        first_responses.response_id is not null as is_answered,
        first_responses.response_id as first_response_id,
        first_responses.responded_at as first_response_at,
        date_diff('second', mentions.created_at, first_responses.responded_at) / 60.0
            as first_response_minutes,
        first_responses.responder_id,
        first_responses.responder_username,
        mention_details.is_deleted

    from mentions
    inner join mention_details
        on mentions.mention_id = mention_details.post_id
    left join first_responses
        on mentions.mention_id = first_responses.replied_to_post_id

)

select * from final
