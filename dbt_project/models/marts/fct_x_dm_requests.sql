{#-
    One row per DM request (int_x__dm_requests, whose header says the rule): no text, counts
    and times only. A plain table rebuilt by every build that takes in X data.
-#}

with

requests as (

    select * from {{ ref('int_x__dm_requests') }}

),

final as (

    select
        dm_request_id,
        account_id,
        account_username,
        dm_conversation_id,
        customer_id,
        request_event_id,
        customer_messages,
        requested_at,
        requested_date,
        answer_status,
        is_answered,
        is_waiting,
        first_response_event_id,
        first_response_at,
        first_response_minutes,
        first_response_business_minutes,
        late_response_at,
        target_minutes,
        target_basis,
        target_due_at,
        is_answered_within_target,
        is_target_breached

    from requests

)

select * from final
