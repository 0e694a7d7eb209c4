with

mentions as (

    select * from {{ ref('int_x__mentions_responses') }}

),

care_times as (

    select * from {{ ref('int_x__mentions_care_times') }}

),

final as (

    select
        mentions.mention_id,
        mentions.created_at,
        mentions.created_date,
        mentions.author_id,
        mentions.author_username,
        mentions.conversation_id,
        mentions.mention_text,
        mentions.mentioned_account_username,
        mentions.mentioned_account_usernames,
        mentions.mentioned_account_count,
        mentions.is_reply_to_account,
        mentions.needs_answer,
        mentions.needs_answer_reason,
        mentions.answer_status,
        mentions.is_answered,
        mentions.first_response_id,
        mentions.first_response_at,
        mentions.first_response_minutes,
        care_times.first_response_business_minutes,
        mentions.responder_username,
        mentions.late_response_at,
        care_times.target_minutes,
        care_times.target_basis,
        care_times.target_due_at,
        care_times.is_answered_within_target,
        care_times.is_target_breached,
        mentions.is_deleted

    from mentions
    inner join care_times
        on mentions.mention_id = care_times.mention_id

)

select * from final
