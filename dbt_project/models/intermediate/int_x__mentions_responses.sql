{#-
    One row per mention (see int_x__mention_accounts), whether it needs an answer
    (macros/needs_answer.sql) and whether a company account answered it. A company reply is
    a reply by a company account whose replied_to reference, mapped to the edit root, is the
    mention's id (a reply to any version of an edited mention counts); the first is the
    earliest (ties broken by post id).

    answer_status: `answered` when the first company reply came within the answer window
    (var x_answer_window_days after the mention), `late` when it came after it (not an
    answer), else `waiting` while the window is still open at the end of the X data (the
    latest X batch's interval end), else `unanswered`. first_response_* describe the answer
    (null unless answered); first_response_minutes = (first_response_at - created_at) in
    minutes, with second precision.

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
        {{ string_agg_ordered('account_username', "','", 'account_username') }}
            as mentioned_account_usernames,
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
            order by created_at asc nulls last, post_id asc
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
        is_deleted,
        {{ needs_answer_reason('post_text', 'author_username') }} as needs_answer_reason

    from posts

),

replied as (

    select
        mentions.*,
        first_responses.response_id,
        first_responses.responded_at,
        first_responses.responder_id,
        first_responses.responder_username,
        {{ answer_window_end('mentions.created_at') }} as window_ends_at,
        first_responses.responded_at <= {{ answer_window_end('mentions.created_at') }}
            as is_within_window

    from mentions
    left join first_responses
        on mentions.mention_id = first_responses.replied_to_post_id

),

final as (

    select
        replied.mention_id,
        replied.created_at,
        cast(replied.created_at as date) as created_date,
        mention_details.author_id,
        mention_details.author_username,
        mention_details.conversation_id,
        mention_details.post_text as mention_text,
        replied.mentioned_account_id,
        replied.mentioned_account_username,
        replied.mentioned_account_usernames,
        replied.mentioned_account_count,
        replied.is_reply_to_account,
        mention_details.needs_answer_reason,
        mention_details.needs_answer_reason in ('question', 'request') as needs_answer,
        case
            when replied.is_within_window then 'answered'
            when replied.response_id is not null then 'late'
            when replied.window_ends_at > {{ x_data_until() }} then 'waiting'
            else 'unanswered'
        end as answer_status,
        coalesce(replied.is_within_window, false) as is_answered,
        case when replied.is_within_window then replied.response_id end as first_response_id,
        case when replied.is_within_window then replied.responded_at end as first_response_at,
        case
            when replied.is_within_window
                then cast({{ date_diff(
                    'second', 'replied.created_at', 'replied.responded_at'
                ) }} as double) / 60
        end as first_response_minutes,
        case when replied.is_within_window then replied.responder_id end as responder_id,
        case
            when replied.is_within_window then replied.responder_username
        end as responder_username,
        case when not replied.is_within_window then replied.responded_at end as late_response_at,
        mention_details.is_deleted

    from replied
    inner join mention_details
        on replied.mention_id = mention_details.post_id

)

select * from final
