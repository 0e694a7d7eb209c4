{#-
    One row per raw row of x.dm_events (not de-duplicated): the DM event parsed from its
    payload. The message's text is never selected (DM texts reach no model): has_text says
    whether there was one.
-#}

with

source as (

    select * from {{ source('x', 'dm_events') }}

),

renamed as (

    select
        batch_id,
        interval_start,
        interval_end,
        account_username,
        lower(account_username) as account_username_lower,
        account_id,
        coalesce(event_id, {{ json_text('payload', '$.id') }}) as event_id,
        {{ json_text('payload', '$.event_type') }} as event_type,
        {{ json_text('payload', '$.dm_conversation_id') }} as dm_conversation_id,
        {{ json_text('payload', '$.sender_id') }} as sender_id,
        coalesce(
            {{ json_string_list('payload', '$.participant_ids[*]') }}, {{ empty_list() }}
        ) as participant_ids,
        {{ parse_x_timestamp(json_text('payload', '$.created_at')) }} as created_at,
        coalesce(length({{ json_text('payload', '$.text') }}) > 0, false) as has_text,
        page_no,
        _loaded_at

    from source

)

select * from renamed
