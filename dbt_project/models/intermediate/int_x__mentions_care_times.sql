{#-
    One row per mention (int_x__mentions_responses): its first response in business minutes
    and its first-response target, with the account's care entry (var x_account_care, see
    macros/care_hours.sql) of its primary mentioned account.

    - first_response_business_minutes: the time from the mention to its answer that falls
      inside the account's opening spans (int_x__account_business_hours), second precision;
      equal to the calendar minutes for an account open 24/7. Null unless answered.
    - target_due_at: when the target runs out: target_minutes after the mention (calendar
      basis), or once target_minutes of opening time have passed since the mention (business
      basis: a mention on Friday evening is due on Monday morning). Null without a target.
    - is_answered_within_target: answered (within the answer window) by target_due_at.
    - is_target_breached: the mention needs an answer and was not answered by
      target_due_at, known once target_due_at has passed at the end of the X data (a
      waiting mention past its target is a breach already); false when answered within
      target; null while it can still be met, for mentions that need no answer and without
      a target.
-#}

with

mentions as (

    select * from {{ ref('int_x__mentions_responses') }}

),

business_hours as (

    select * from {{ ref('int_x__account_business_hours') }}

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

-- the opening time of each span after the mention, and its running total from the mention
open_time as (

    select
        mention_care.mention_id,
        mention_care.target_minutes,
        business_hours.closes_at,
        date_diff(
            'second',
            greatest(business_hours.opens_at, mention_care.created_at),
            least(
                business_hours.closes_at,
                coalesce(mention_care.first_response_at, business_hours.closes_at)
            )
        ) as seconds_to_response,
        sum(
            date_diff(
                'second',
                greatest(business_hours.opens_at, mention_care.created_at),
                business_hours.closes_at
            )
        ) over (
            partition by mention_care.mention_id
            order by business_hours.opens_at
            rows between unbounded preceding and current row
        ) as seconds_open_since_mention

    from mention_care
    inner join business_hours
        on
            mention_care.care_username is not distinct from business_hours.care_username
            and business_hours.closes_at > mention_care.created_at
            -- as far as int_x__account_business_hours reaches from the end of the X data
            and business_hours.opens_at
            < {{ answer_window_end('mention_care.created_at') }} + to_days(14)

),

business_times as (

    select
        open_time.mention_id,
        sum(greatest(open_time.seconds_to_response, 0)) / 60.0 as response_business_minutes,
        min(
            open_time.closes_at
            - to_seconds(open_time.seconds_open_since_mention - open_time.target_minutes * 60)
        ) filter (
            where open_time.seconds_open_since_mention >= open_time.target_minutes * 60
        ) as business_due_at

    from open_time
    group by open_time.mention_id

),

due as (

    select
        mention_care.*,
        case
            when mention_care.is_answered then business_times.response_business_minutes
        end as first_response_business_minutes,
        case mention_care.target_basis
            when 'calendar'
                then mention_care.created_at + to_seconds(mention_care.target_minutes * 60)
            when 'business' then business_times.business_due_at
        end as target_due_at

    from mention_care
    left join business_times
        on mention_care.mention_id = business_times.mention_id

),

final as (

    select
        mention_id,
        care_username,
        first_response_business_minutes,
        target_minutes,
        target_basis,
        target_due_at,
        is_answered and first_response_at <= target_due_at as is_answered_within_target,
        case
            when not needs_answer or target_due_at is null then null
            when is_answered and first_response_at <= target_due_at then false
            when target_due_at <= {{ x_data_until() }} then true
        end as is_target_breached

    from due

)

select * from final
