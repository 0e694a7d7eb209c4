{#-
    One row per access-log line (de-duplicated: the same line loaded by two batches counts
    once). The extract step already split the request, pseudonymised the client and
    classified the user agent (a person's browser or a bot: crawler-user-agents, documented
    rules, ua-parser; once per distinct user agent, see extract/visitors.py) and the path;
    here:
    - is_page_view: a human (not bot) GET of a non-static path answered 2xx or 304;
    - referrer_key: identifies the (referrer_host, utm_source, utm_medium) combination that
      int_support_site__referrer_channels classifies.

    Incremental by day (microbatch on requested_at, see macros/incremental.sql): a line
    belongs to the day of its requested_at whichever batch loaded it, so de-duplicating
    within a day is de-duplicating everywhere; dbt reads only the batch's day of staging.
-#}

{{
    config(
        materialized='incremental',
        incremental_strategy='microbatch',
        event_time='requested_at',
        batch_size='day',
        begin='2020-01-01',
        lookback=2,
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

final as (

    select
        request_id,
        site,
        requested_at,
        cast(requested_at as date) as requested_date,
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
        coalesce(is_bot, true) as is_bot,
        bot_kind,
        coalesce(is_static_asset, false) as is_static_asset,
        (
            not coalesce(is_bot, true)
            and not coalesce(is_static_asset, false)
            and http_method = 'GET'
            and (status between 200 and 299 or status = 304)
        ) as is_page_view,
        source_file,
        line_no

    from deduplicated
    where load_rank = 1

)

select * from final
