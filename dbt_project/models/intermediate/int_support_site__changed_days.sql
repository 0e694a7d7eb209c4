{#-
    The days whose support-site numbers this build recomputes (see macros/incremental.sql):
    each changed day and its neighbours (sessions that span midnight), and the start day of
    every session within the timeout of a changed day (a late line can join a session to
    one that started days before). A full build recomputes every day.
-#}

{{ config(materialized='table') }}

with

changed as (

    select date_day from {{ changed_days('support_site') }} as changed_support_site_days

),

sessions as (

    select * from {{ ref('int_support_site__sessions') }}

),

neighbours as (

    select cast(changed.date_day + to_days(shifts.days_apart) as date) as date_day
    from changed
    cross join (values (-1), (0), (1)) as shifts (days_apart)

),

session_days as (

    select session_date as date_day from sessions
    where {{ session_near_changed_days() }}

),

final as (

    select date_day from neighbours
    union
    select date_day from session_days

)

select * from final
