{{ config(event_time='requested_at') }}

with

source as (

    select * from {{ source('support_site', 'requests') }}

),

renamed as (

    select
        -- a line is identified by its site, its file's content id and its line number, so
        -- the same line read from access.log and later from access.log.1 keeps its id
        md5(concat_ws('|', site, file_id, cast(line_no as string))) as request_id,
        batch_id,
        interval_start,
        interval_end,
        site,
        source_file,
        file_id,
        line_no,
        requested_at,
        visitor_id,
        upper(method) as http_method,
        path as request_path,
        query_string,
        protocol,
        status,
        bytes as response_bytes,
        request_time as request_seconds,
        nullif(trim(referrer), '') as referrer,
        referrer_host,
        referrer_path,
        utm_source,
        utm_medium,
        utm_campaign,
        nullif(trim(user_agent), '') as user_agent,
        is_bot,
        bot_kind,
        internal_kind,
        is_static_asset,
        _loaded_at

    from source

)

select * from renamed
