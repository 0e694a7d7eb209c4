{#-
    One row per opening span of each account's care hours, in UTC: the weekly schedule of
    its care entry (var x_account_care, see macros/care_hours.sql) on every local day from
    the day before the first X post to two weeks past the answer window of the end of the X
    data, but on the entry's holidays. An account open 24/7 has a span per local day, from
    midnight to midnight: its business time is calendar time.

    care_username is the entry's username (null: the defaults', for every account the
    accounts file does not name). Spans never overlap within an entry (openings of a day are
    disjoint, accounts.py checks it; a span crossing midnight is two).
-#}

with

posts as (

    select * from {{ ref('int_x__posts_classified') }}

),

care as (

    {{ care_entries_sql() }}

),

openings as (

    {{ care_openings_sql() }}

),

holidays as (

    {{ care_holidays_sql() }}

),

bounds as (

    select
        min(created_date) - 1 as first_day,
        cast({{ x_data_until() }} as date) + {{ var('x_answer_window_days') }} + 14 as last_day

    from posts

),

local_days as (

    select {{ date_series('first_day', 'last_day') }} as local_day
    from bounds
    where first_day is not null

),

spans as (

    select
        care.care_username,
        local_days.local_day,
        {{ local_to_utc(
            'local_days.local_day + ' ~ interval_minutes('openings.opens_minute'), 'care.time_zone'
        ) }} as opens_at,
        {{ local_to_utc(
            'local_days.local_day + ' ~ interval_minutes('openings.closes_minute'), 'care.time_zone'
        ) }} as closes_at

    from care
    cross join local_days
    inner join openings
        on
            care.care_username is not distinct from openings.care_username
            and {{ iso_day_of_week('local_days.local_day') }} = openings.iso_weekday
    left join holidays
        on
            care.care_username is not distinct from holidays.care_username
            and local_days.local_day = holidays.holiday_date
    where holidays.holiday_date is null

),

final as (

    select
        care_username,
        local_day,
        opens_at,
        closes_at

    from spans
    -- a span inside a skipped hour (a DST change) is empty
    where closes_at > opens_at

)

select * from final
