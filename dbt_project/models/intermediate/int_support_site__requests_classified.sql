{#-
    One row per access-log line (de-duplicated: the same line loaded by two batches counts
    once), with:
    - is_bot: missing user agent, or user agent matching bot_user_agent_regex() (a simple
      documented regex; a later issue upgrades it);
    - is_static_asset: path ends in .css .js .png .jpg .jpeg .gif .svg .ico .woff .woff2 .map;
    - is_page_view: a human (not bot) GET of a non-static path answered 2xx or 304;
    - referrer_host: lowercased host of the referrer, without port;
    - utm_source / utm_medium: lowercased, url-decoded from the request target;
    - referrer_key: identifies the (referrer_host, utm_source, utm_medium) combination that
      int_support_site__referrer_channels classifies.
-#}

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

parsed as (

    select
        request_id,
        requested_at,
        client_ip,
        user_agent,
        http_method,
        target,
        regexp_extract(target, '^[^?#]*') as request_path,
        status,
        response_bytes,
        referrer,
        {{ url_host('referrer') }} as referrer_host,
        lower({{ url_query_param('target', 'utm_source') }}) as utm_source,
        lower({{ url_query_param('target', 'utm_medium') }}) as utm_medium,
        source_file,
        line_no

    from deduplicated
    where load_rank = 1

),

flagged as (

    select
        *,
        coalesce(
            regexp_matches(lower(user_agent), {{ bot_user_agent_regex() }}), true
        ) as is_bot,
        regexp_matches(
            lower(request_path), '\.(css|js|png|jpe?g|gif|svg|ico|woff2?|map)$'
        ) as is_static_asset

    from parsed

),

final as (

    select
        request_id,
        requested_at,
        cast(requested_at as date) as requested_date,
        client_ip,
        user_agent,
        http_method,
        target,
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
        is_bot,
        is_static_asset,
        (
            not is_bot
            and not is_static_asset
            and http_method = 'GET'
            and (status between 200 and 299 or status = 304)
        ) as is_page_view,
        source_file,
        line_no

    from flagged

)

select * from final
