{#-
    One row per support-site visit. Human page views (see int_support_site__requests_classified)
    are grouped by visitor = (site, visitor_id, user_agent); a visitor's next page view starts a new
    session when more than var('session_timeout_minutes') minutes passed since the previous
    one (exactly the timeout stays in the same session). A session takes the channel and
    referrer_network of its first page view; it belongs to the UTC day it started.

    Incremental by day (microbatch on session_started_at, see macros/incremental.sql): a
    day's sessions are grouped from the page views of that day, of the session timeout
    before it (whether its first page view continues a visit of the day before) and of the
    next day (visits that go on past midnight). So a visit is followed until the end of the
    day after it started: the page views of a visit longer than that are left out of it.
    A changed day changes the sessions of the day before, the day itself and the next one.
-#}

{{
    config(
        materialized='incremental',
        incremental_strategy='microbatch',
        event_time='session_started_at',
        batch_size='day',
        begin='2020-01-01',
        lookback=2,
        partition_by='session_date',
    )
}}

with

requests as (

    -- not dbt's filter to the batch's day: the page views around it (see above)
    select * from {{ ref('int_support_site__requests_classified').render() }}
    {% if in_batch() -%}
        where
            requested_at >= {{ batch_start() }} - interval {{ var('session_timeout_minutes') }} minute
            and requested_at < {{ batch_end() }} + interval 1 day
    {%- endif %}

),

referrer_channels as (

    select * from {{ ref('int_support_site__referrer_channels') }}

),

page_views as (

    select
        request_id,
        requested_at,
        site,
        visitor_id,
        user_agent,
        request_path,
        referrer_key

    from requests
    where is_page_view

),

gaps as (

    select
        *,
        lag(requested_at) over (
            partition by site, visitor_id, user_agent
            order by requested_at asc, request_id asc
        ) as previous_requested_at

    from page_views

),

session_starts as (

    select
        *,
        case
            when previous_requested_at is null then 1
            when
                {{ date_diff('second', 'previous_requested_at', 'requested_at') }}
                > {{ var('session_timeout_minutes') }} * 60
                then 1
            else 0
        end as is_session_start

    from gaps

),

numbered as (

    select
        *,
        sum(is_session_start) over (
            partition by site, visitor_id, user_agent
            order by requested_at asc, request_id asc
            rows between unbounded preceding and current row
        ) as visitor_session_number

    from session_starts

),

sessions as (

    select
        site,
        visitor_id,
        user_agent,
        visitor_session_number,
        min(requested_at) as session_started_at,
        max(requested_at) as session_ended_at,
        count(*) as page_views,
        max(case when is_session_start = 1 then request_id end) as first_request_id,
        max(case when is_session_start = 1 then request_path end) as landing_path,
        max(case when is_session_start = 1 then referrer_key end) as referrer_key

    from numbered
    group by site, visitor_id, user_agent, visitor_session_number

),

final as (

    select
        md5(
            concat_ws(
                '|',
                sessions.site,
                sessions.visitor_id,
                sessions.user_agent,
                cast(sessions.session_started_at as string)
            )
        ) as session_id,
        sessions.site,
        sessions.visitor_id,
        sessions.user_agent,
        sessions.session_started_at,
        sessions.session_ended_at,
        cast(sessions.session_started_at as date) as session_date,
        {{ date_diff('second', 'sessions.session_started_at', 'sessions.session_ended_at') }}
            as session_duration_seconds,
        sessions.page_views,
        sessions.first_request_id,
        sessions.landing_path,
        referrer_channels.referrer_host,
        referrer_channels.utm_source,
        referrer_channels.utm_medium,
        referrer_channels.channel,
        referrer_channels.referrer_network

    from sessions
    left join referrer_channels
        on sessions.referrer_key = referrer_channels.referrer_key
    {% if in_batch() -%}
        -- the batch's own sessions (dbt's insert filters too, but not the first batch's create)
        where
            sessions.session_started_at >= {{ batch_start() }}
            and sessions.session_started_at < {{ batch_end() }}
    {%- endif %}

)

select * from final
