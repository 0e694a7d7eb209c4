with

source as (

    select * from {{ source('support_site', 'requests') }}

),

renamed as (

    select
        -- the same log line can be loaded by more than one batch; this key identifies the line
        md5(
            concat_ws(
                '|',
                source_file,
                cast(line_no as varchar),
                cast(requested_at as varchar),
                client_ip,
                method,
                target,
                cast(status as varchar),
                coalesce(user_agent, '')
            )
        ) as request_id,
        batch_id,
        interval_start,
        interval_end,
        source_file,
        line_no,
        requested_at,
        client_ip,
        upper(method) as http_method,
        target,
        protocol,
        status,
        bytes as response_bytes,
        nullif(trim(referrer), '') as referrer,
        nullif(trim(user_agent), '') as user_agent,
        _loaded_at

    from source

)

select * from renamed
