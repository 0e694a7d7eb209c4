{#-
    First response against each account's care hours and target, defined once for every
    kind of customer request (public mentions: int_x__mentions_care_times; DM requests:
    int_x__dm_requests_care_times).

    `items` is a relation (a CTE's name) with one row per request: `id_column`, created_at,
    first_response_at (null unless answered), needs_answer, is_answered, care_username,
    target_minutes, target_basis (its account's care entry, var x_account_care). The query
    rendered has one row per request:

    - first_response_business_minutes: the time from the request to its answer that falls
      inside the account's opening spans (int_x__account_business_hours), second precision;
      equal to the calendar minutes for an account open 24/7. Null unless answered.
    - target_due_at: when the target runs out: target_minutes after the request (calendar
      basis), or once target_minutes of opening time have passed since it (business
      basis: a request on Friday evening is due on Monday morning). Null without a target.
    - is_answered_within_target: answered (within the answer window) by target_due_at.
    - is_target_breached: the request needs an answer and was not answered by
      target_due_at, known once target_due_at has passed at the end of the X data (a
      waiting request past its target is a breach already); false when answered within
      target; null while it can still be met, for requests that need no answer and without
      a target.
-#}
{% macro first_response_care_times(items, id_column) -%}
    {{ return(adapter.dispatch('first_response_care_times')(items, id_column)) }}
{%- endmacro %}

{% macro default__first_response_care_times(items, id_column) -%}
    with

    -- the opening time of each span after the request, and its running total from it
    open_time as (

        select
            {{ items }}.{{ id_column }},
            {{ items }}.target_minutes,
            business_hours.closes_at,
            {{ date_diff('second', 
                'greatest(business_hours.opens_at, ' ~ items ~ '.created_at)',
                'least(business_hours.closes_at, coalesce('
                ~ items ~ '.first_response_at, business_hours.closes_at))'
            ) }} as seconds_to_response,
            sum(
                {{ date_diff('second', 
                    'greatest(business_hours.opens_at, ' ~ items ~ '.created_at)',
                    'business_hours.closes_at'
                ) }}
            ) over (
                partition by {{ items }}.{{ id_column }}
                order by business_hours.opens_at
                rows between unbounded preceding and current row
            ) as seconds_open_since_request

        from {{ items }}
        inner join {{ ref('int_x__account_business_hours') }} as business_hours
            on
                {{ items }}.care_username is not distinct from business_hours.care_username
                and business_hours.closes_at > {{ items }}.created_at
                -- as far as int_x__account_business_hours reaches from the end of the X data
                and business_hours.opens_at
                < {{ answer_window_end(items ~ '.created_at') }} + {{ interval_days(14) }}

    ),

    business_times as (

        select
            open_time.{{ id_column }},
            cast(sum(greatest(open_time.seconds_to_response, 0)) as double) / 60
                as response_business_minutes,
            min(
                open_time.closes_at
                - {{ interval_seconds(
                    'open_time.seconds_open_since_request - open_time.target_minutes * 60'
                ) }}
            ) filter (
                where open_time.seconds_open_since_request >= open_time.target_minutes * 60
            ) as business_due_at

        from open_time
        group by open_time.{{ id_column }}

    ),

    due as (

        select
            {{ items }}.*,
            case
                when {{ items }}.is_answered then business_times.response_business_minutes
            end as first_response_business_minutes,
            case {{ items }}.target_basis
                when 'calendar'
                    then {{ items }}.created_at + {{ interval_seconds(items ~ '.target_minutes * 60') }}
                when 'business' then business_times.business_due_at
            end as target_due_at

        from {{ items }}
        left join business_times
            on {{ items }}.{{ id_column }} = business_times.{{ id_column }}

    )

    select
        {{ id_column }},
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
{%- endmacro %}
