{#-
    Version 1 (deprecated, see the deprecation_date in fct_x_mentions.yml): version 2 with
    is_answered under its old name, answered. A plain table rebuilt by every build.
-#}

{{ config(materialized='table') }}

with

mentions as (

    select * from {{ ref('fct_x_mentions', v=2) }}

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
        is_answered as answered,
        first_response_id,
        first_response_at,
        first_response_minutes,
        responder_username,
        is_deleted

    from mentions

)

select * from final
