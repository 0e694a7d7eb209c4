with

mentions as (

    select * from {{ ref('int_x__mentions_responses') }}

),

final as (

    select
        mention_id,
        created_at,
        created_date,
        author_id,
        author_username,
        conversation_id,
        mention_text,
        mentioned_account_username,
        mentioned_account_usernames,
        mentioned_account_count,
        is_reply_to_account,
        needs_answer,
        needs_answer_reason,
        answer_status,
        is_answered,
        first_response_id,
        first_response_at,
        first_response_minutes,
        responder_username,
        late_response_at,
        is_deleted

    from mentions

)

select * from final
