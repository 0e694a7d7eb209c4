{#-
    One row per mention (int_x__mentions_responses): its first response in business minutes
    and its first-response target, with the account's care entry (var x_account_care, see
    macros/care_hours.sql) of its primary mentioned account, computed by
    first_response_care_times() (macros/care_times.sql, shared with the DM requests), which
    says the rules.
-#}

with

mentions as (

    select * from {{ ref('int_x__mentions_responses') }}

),

care as (

    {{ care_entries_sql() }}

),

mention_care as (

    select
        mentions.mention_id,
        mentions.created_at,
        mentions.first_response_at,
        mentions.needs_answer,
        mentions.is_answered,
        care.care_username,
        care.target_minutes,
        care.target_basis

    from mentions
    inner join care
        on
            {{ care_username('mentions.mentioned_account_username') }}
            is not distinct from care.care_username

),

final as (

    {{ first_response_care_times('mention_care', 'mention_id') }}

)

select * from final
