{#-
    One row per DM request: in an account's conversation, a customer's message starts a
    request when the account has not written in that conversation since the customer's
    previous request began, i.e. the first customer message after the account's last
    message, or the first one ever (several customer messages before a reply make one
    request). Its first response is the account's next message in the conversation. Every
    DM request needs an answer (its text is not read).

    answer_status as the mentions' (int_x__mentions_responses): `answered` when the first
    response came within the answer window (var x_answer_window_days), `late` after it (not
    an answer), `waiting` while the window is still open at the end of the X data, else
    `unanswered`. The business minutes and the target (due time, within, breach) are
    first_response_care_times()'s (macros/care_times.sql), as for mentions.

    A plain table rebuilt by every build that takes in X data (see macros/incremental.sql).
-#}

with

messages as (

    select * from {{ ref('int_x__dm_messages') }}

),

care as (

    {{ care_entries_sql() }}

),

-- each message with the account's last message before it, the customers' previous one
-- and the account's next one, within the conversation
placed as (

    select
        *,
        max(case when is_from_account then message_seq end) over (
            partition by account_id, dm_conversation_id
            order by message_seq
            rows between unbounded preceding and 1 preceding
        ) as last_account_seq,
        max(case when is_from_customer then message_seq end) over (
            partition by account_id, dm_conversation_id
            order by message_seq
            rows between unbounded preceding and 1 preceding
        ) as previous_customer_seq,
        min(case when is_from_account then message_seq end) over (
            partition by account_id, dm_conversation_id
            order by message_seq
            rows between 1 following and unbounded following
        ) as next_account_seq

    from messages

),

starts as (

    select
        *,
        is_from_customer
        and coalesce(
            previous_customer_seq is null or last_account_seq > previous_customer_seq, false
        ) as is_request_start

    from placed

),

-- every message with the number of the conversation's requests begun by then
numbered as (

    select
        *,
        sum(case when is_request_start then 1 else 0 end) over (
            partition by account_id, dm_conversation_id
            order by message_seq
            rows between unbounded preceding and current row
        ) as request_no

    from starts

),

-- a request's customer messages: its first and those before the account's next one
request_messages as (

    select
        account_id,
        dm_conversation_id,
        request_no,
        count(*) as customer_messages

    from numbered
    where is_from_customer and request_no > 0
    group by account_id, dm_conversation_id, request_no

),

requests as (

    select
        numbered.*,
        request_messages.customer_messages

    from numbered
    inner join request_messages
        on
            numbered.account_id = request_messages.account_id
            and numbered.dm_conversation_id = request_messages.dm_conversation_id
            and numbered.request_no = request_messages.request_no
    where numbered.is_request_start

),

responded as (

    select
        requests.account_id,
        requests.account_username,
        requests.dm_conversation_id,
        requests.event_id as request_event_id,
        requests.sender_id as customer_id,
        requests.created_at,
        responses.event_id as response_event_id,
        responses.created_at as responded_at,
        {{ answer_window_end('requests.created_at') }} as window_ends_at,
        responses.created_at <= {{ answer_window_end('requests.created_at') }}
            as is_within_window,
        requests.customer_messages

    from requests
    left join messages as responses
        on
            requests.account_id = responses.account_id
            and requests.dm_conversation_id = responses.dm_conversation_id
            and requests.next_account_seq = responses.message_seq

),

request_status as (

    select
        account_id || '-' || request_event_id as dm_request_id,
        account_id,
        account_username,
        dm_conversation_id,
        request_event_id,
        customer_id,
        customer_messages,
        created_at,
        cast(created_at as date) as created_date,
        true as needs_answer,
        case
            when is_within_window then 'answered'
            when response_event_id is not null then 'late'
            when window_ends_at > {{ x_data_until() }} then 'waiting'
            else 'unanswered'
        end as answer_status,
        coalesce(is_within_window, false) as is_answered,
        case when is_within_window then response_event_id end as first_response_event_id,
        case when is_within_window then responded_at end as first_response_at,
        case
            when is_within_window
                then cast({{ date_diff('second', 'created_at', 'responded_at') }} as double) / 60
        end as first_response_minutes,
        case when not is_within_window then responded_at end as late_response_at

    from responded

),

request_care as (

    select
        request_status.*,
        care.care_username,
        care.target_minutes,
        care.target_basis

    from request_status
    inner join care
        on
            {{ care_username('request_status.account_username') }}
            is not distinct from care.care_username

),

care_times as (

    {{ first_response_care_times('request_care', 'dm_request_id') }}

),

final as (

    select
        request_care.dm_request_id,
        request_care.account_id,
        request_care.account_username,
        request_care.dm_conversation_id,
        request_care.request_event_id,
        request_care.customer_id,
        request_care.customer_messages,
        request_care.created_at as requested_at,
        request_care.created_date as requested_date,
        request_care.answer_status,
        request_care.is_answered,
        request_care.answer_status = 'waiting' as is_waiting,
        request_care.first_response_event_id,
        request_care.first_response_at,
        request_care.first_response_minutes,
        care_times.first_response_business_minutes,
        request_care.late_response_at,
        care_times.care_username,
        care_times.target_minutes,
        care_times.target_basis,
        care_times.target_due_at,
        care_times.is_answered_within_target,
        care_times.is_target_breached

    from request_care
    inner join care_times
        on request_care.dm_request_id = care_times.dm_request_id

)

select * from final
