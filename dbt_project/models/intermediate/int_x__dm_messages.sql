{#-
    One row per DM message of each account whose DMs were read: the events of
    stg_x__dm_events de-duplicated per (account, event) (a rerun or an overlapping batch
    lands an event again: the latest batch's row is kept). An event between two configured
    accounts is one row for each.

    is_from_account: the account sent it. is_from_company: one of the company's other
    configured accounts did (int_x__accounts). is_from_customer: neither. message_seq
    orders the account's messages of a conversation (by created_at, ties by event id). No
    text: has_text only.
-#}

with

events as (

    select * from {{ ref('stg_x__dm_events') }}

),

accounts as (

    select * from {{ ref('int_x__accounts') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by account_id, event_id
            order by interval_end desc, batch_id desc, _loaded_at desc, page_no asc nulls last
        ) as recency_rank

    from events
    where account_id is not null and event_id is not null

),

deduplicated as (

    select * from ranked
    where recency_rank = 1

),

final as (

    select
        deduplicated.account_id,
        coalesce(accounts.account_username, deduplicated.account_username) as account_username,
        deduplicated.event_id,
        deduplicated.dm_conversation_id,
        deduplicated.sender_id,
        deduplicated.created_at,
        cast(deduplicated.created_at as date) as created_date,
        deduplicated.sender_id = deduplicated.account_id as is_from_account,
        deduplicated.sender_id != deduplicated.account_id
        and senders.account_id is not null as is_from_company,
        deduplicated.sender_id != deduplicated.account_id
        and senders.account_id is null as is_from_customer,
        deduplicated.has_text,
        row_number() over (
            partition by deduplicated.account_id, deduplicated.dm_conversation_id
            order by deduplicated.created_at asc nulls last, deduplicated.event_id asc
        ) as message_seq

    from deduplicated
    left join accounts
        on deduplicated.account_id = accounts.account_id
    left join accounts as senders
        on deduplicated.sender_id = senders.account_id

)

select * from final
