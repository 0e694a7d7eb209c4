{#-
    One row per error entry of the metrics refresh (GET /2/tweets). is_not_found marks the
    entries that say a requested post no longer exists: a resource-not-found problem (or
    title "Not Found Error") about a tweet/post requested by id. Other problems (e.g. an
    authorization error on a protected post) are kept but say nothing about deletion.
-#}

with

source as (

    select * from {{ source('x', 'post_lookup_errors') }}

),

renamed as (

    select
        batch_id,
        interval_start,
        interval_end,
        interval_end as snapshot_at,
        coalesce(
            post_id,
            {{ json_text('payload', '$.resource_id') }},
            {{ json_text('payload', '$.value') }}
        ) as post_id,
        {{ json_text('payload', '$.title') }} as error_title,
        {{ json_text('payload', '$.type') }} as error_type,
        {{ json_text('payload', '$.detail') }} as error_detail,
        {{ json_text('payload', '$.resource_type') }} as resource_type,
        {{ json_text('payload', '$.parameter') }} as error_parameter,
        {{ json_text('payload', '$.value') }} as requested_value,
        payload,
        _loaded_at

    from source

),

flagged as (

    select
        *,
        coalesce(
            (
                error_type like '%/resource-not-found'
                or error_title = 'Not Found Error'
            )
            and coalesce(resource_type, 'tweet') in ('tweet', 'post')
            and coalesce(error_parameter, 'ids') in ('ids', 'id'),
            false
        ) as is_not_found

    from renamed

),

final as (

    select
        batch_id,
        interval_start,
        interval_end,
        snapshot_at,
        post_id,
        error_title,
        error_type,
        error_detail,
        resource_type,
        error_parameter,
        requested_value,
        is_not_found,
        payload,
        _loaded_at

    from flagged

)

select * from final
