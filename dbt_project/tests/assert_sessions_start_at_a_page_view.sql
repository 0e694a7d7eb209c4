-- every session of the days this build rebuilt starts at a page view of its visitor: the
-- one it names as first_request_id, at session_started_at (the requests are read only on
-- the days those sessions started, not the whole history)
with

sessions as (

    select * from {{ ref('int_support_site__sessions') }}
    where
        session_started_at >= {{ build_window_bound('event_time_start', '-infinity') }}
        and session_started_at < {{ build_window_bound('event_time_end', 'infinity') }}

),

requests as (

    select * from {{ ref('int_support_site__requests_classified') }}
    where
        requested_date >= (select min(cast(s.session_started_at as date)) from sessions as s)
        and requested_date <= (select max(cast(s.session_started_at as date)) from sessions as s)

),

final as (

    select
        sessions.session_id,
        sessions.first_request_id

    from sessions
    left join requests
        on sessions.first_request_id = requests.request_id
    where
        requests.request_id is null
        or not requests.is_page_view
        or requests.requested_at != sessions.session_started_at
        or requests.visitor_id != sessions.visitor_id

)

select * from final
