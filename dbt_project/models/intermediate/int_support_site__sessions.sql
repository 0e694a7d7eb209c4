{#-
    One row per support-site visit. Human page views (see int_support_site__requests_classified)
    are grouped by visitor = (site, visitor_id, user_agent); a visitor's next page view starts a new
    session when more than var('session_timeout_minutes') minutes passed since the previous
    one (exactly the timeout stays in the same session). A session takes the channel and
    referrer_network of its first page view; it belongs to the UTC day it started.

    Incremental: whether a page view starts a session depends only on the visitor's
    previous page view, so new or removed page views on a changed day can only change the
    sessions that come within the timeout of that day (a session that spans midnight, or
    one that a late line joins to another). Those sessions are replaced: they are deleted
    and their page views, with the changed days' page views, are grouped again. Sessions
    further away are untouched, however long ago they were.
-#}

{{
    config(
        materialized='incremental',
        incremental_strategy='replace_where',
        incremental_predicates=[session_near_changed_days()],
    )
}}

with

requests as (

    select * from {{ ref('int_support_site__requests_classified') }}

),

referrer_channels as (

    select * from {{ ref('int_support_site__referrer_channels') }}

),

{% if is_incremental() %}

replaced_sessions as (

    select
        site,
        visitor_id,
        user_agent,
        session_started_at,
        session_ended_at

    from {{ this }}
    where {{ session_near_changed_days() }}

),

changed_page_views as (

    select * from requests
    where is_page_view and {{ on_changed_days('requested_date', 'support_site') }}

),

replaced_page_views as (

    select requests.*
    from requests
    inner join replaced_sessions
        on
            requests.site = replaced_sessions.site
            and requests.visitor_id = replaced_sessions.visitor_id
            and requests.user_agent = replaced_sessions.user_agent
            and requests.requested_at
            between replaced_sessions.session_started_at and replaced_sessions.session_ended_at
    where
        requests.is_page_view
        and {{ replaced_session_days() }}

),

requests_in_scope as (

    select * from changed_page_views
    union
    select * from replaced_page_views

),

{% endif %}

page_views as (

    select
        request_id,
        requested_at,
        site,
        visitor_id,
        user_agent,
        request_path,
        referrer_key

    {% if is_incremental() -%}
        from requests_in_scope
    {%- else -%}
        from requests
        where is_page_view
    {%- endif %}

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
                date_diff('second', previous_requested_at, requested_at)
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
                cast(sessions.session_started_at as varchar)
            )
        ) as session_id,
        sessions.site,
        sessions.visitor_id,
        sessions.user_agent,
        sessions.session_started_at,
        sessions.session_ended_at,
        cast(sessions.session_started_at as date) as session_date,
        date_diff('second', sessions.session_started_at, sessions.session_ended_at)
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

)

select * from final
