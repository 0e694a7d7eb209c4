{#-
    One row per access-log line (de-duplicated: the same line loaded by two batches counts
    once). The extract step already split the request, pseudonymised the client, marked
    internal traffic (internal_kind: SUPPORT_SITE_INTERNAL_NETWORKS, the web server's own
    requests) and classified the user agent (a person's browser or a bot: crawler-user-agents,
    documented rules, ua-parser; once per distinct user agent, see extract/visitors.py) and
    the path; here:
    - behavioural bots: a visitor (site, visitor_id, user_agent) whose user agent passed as a
      browser is a bot for the UTC day, first rule winning, when that day it
      1. fetched /robots.txt (behaviour_robots_txt): a person's browser never does;
      2. requested pages faster than var('bot_rate_page_requests') within
         var('bot_rate_window_seconds') (behaviour_rate), a run of requests for the same
         path counting once (a PDF's range requests, a reload);
      3. made at least var('bot_no_assets_page_views') page views without requesting one
         static asset (behaviour_no_assets): a browser loads a page's styles, scripts or
         images, a crawler does not;
    - is_page_request: a GET of a non-static path answered 2xx or 304, whoever asked;
      is_page_view: one by a person (not a bot, not internal traffic);
    - referrer_key: identifies the (referrer_host, utm_source, utm_medium) combination that
      int_support_site__referrer_channels classifies.

    Incremental by day (microbatch on requested_at, see macros/incremental.sql): a line
    belongs to the day of its requested_at whichever batch loaded it, so de-duplicating
    within a day is de-duplicating everywhere, and a batch holds every line of its day, so
    the behavioural verdicts see the whole day: a late line that changes one rebuilds its
    day. dbt reads only the batch's day of staging.
-#}

{{
    config(
        materialized='incremental',
        incremental_strategy='microbatch',
        event_time='requested_at',
        batch_size='day',
        begin='2020-01-01',
        lookback=2,
        partition_by='requested_date',
    )
}}

with

requests as (

    select * from {{ ref('stg_support_site__requests') }}

),

deduplicated as (

    select
        *,
        row_number() over (
            partition by request_id
            order by interval_end desc, batch_id desc
        ) as load_rank

    from requests

),

lines as (

    select
        *,
        cast(requested_at as date) as requested_date,
        coalesce(is_static_asset, false) as is_asset,
        (
            not coalesce(is_static_asset, false)
            and http_method = 'GET'
            and (status between 200 and 299 or status = 304)
        ) as is_page_request,
        -- a browser by its user agent, from outside the company: the behaviour rules' subjects
        not coalesce(is_bot, true) and internal_kind is null as is_browser_agent

    from deduplicated
    where load_rank = 1

),

page_hits as (

    select
        request_id,
        site,
        visitor_id,
        user_agent,
        requested_date,
        requested_at,
        request_path,
        lag(request_path) over (
            partition by site, visitor_id, user_agent, requested_date
            order by requested_at asc, request_id asc
        ) as previous_path

    from lines
    where is_browser_agent and not is_asset

),

paced as (

    -- for each request for a new page, how many such requests came within the rate window
    select
        request_id,
        count(*) over (
            partition by site, visitor_id, user_agent, requested_date
            order by {{ epoch_seconds('requested_at') }} asc
            range between {{ var('bot_rate_window_seconds') - 1 }} preceding and current row
        ) as recent_page_hits

    from page_hits
    where previous_path is null or previous_path != request_path

),

visitor_days as (

    select
        lines.*,
        max(case when lower(lines.request_path) = '/robots.txt' then 1 else 0 end)
            over visitor_day as fetched_robots_txt,
        max(coalesce(paced.recent_page_hits, 0)) over visitor_day as fastest_page_hits,
        sum(case when lines.is_page_request then 1 else 0 end)
            over visitor_day as day_page_requests,
        sum(case when lines.is_asset then 1 else 0 end) over visitor_day as day_assets

    from lines
    left join paced
        on lines.request_id = paced.request_id
    window visitor_day as (
        partition by lines.site, lines.visitor_id, lines.user_agent, lines.requested_date
    )

),

classified as (

    select
        *,
        case
            when not is_browser_agent then null
            when fetched_robots_txt = 1 then 'behaviour_robots_txt'
            when fastest_page_hits > {{ var('bot_rate_page_requests') }} then 'behaviour_rate'
            when
                day_assets = 0 and day_page_requests >= {{ var('bot_no_assets_page_views') }}
                then 'behaviour_no_assets'
        end as behaviour_bot_kind

    from visitor_days

),

final as (

    select
        request_id,
        site,
        requested_at,
        requested_date,
        visitor_id,
        user_agent,
        http_method,
        request_path,
        status,
        response_bytes,
        referrer,
        referrer_host,
        utm_source,
        utm_medium,
        md5(
            concat_ws(
                '|',
                coalesce(referrer_host, ''),
                coalesce(utm_source, ''),
                coalesce(utm_medium, '')
            )
        ) as referrer_key,
        internal_kind,
        internal_kind is not null as is_internal_traffic,
        internal_kind is null
        and (coalesce(is_bot, true) or behaviour_bot_kind is not null) as is_bot,
        case
            when internal_kind is null then coalesce(behaviour_bot_kind, bot_kind)
        end as bot_kind,
        is_asset as is_static_asset,
        is_page_request,
        is_page_request and is_browser_agent and behaviour_bot_kind is null as is_page_view,
        source_file,
        line_no

    from classified

)

select * from final
