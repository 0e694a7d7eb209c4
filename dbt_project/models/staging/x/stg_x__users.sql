with

source as (

    select * from {{ source('x', 'users') }}

),

renamed as (

    select
        batch_id,
        interval_start,
        interval_end,
        coalesce(user_id, {{ json_text('payload', '$.id') }}) as user_id,
        {{ json_text('payload', '$.username') }} as username,
        lower({{ json_text('payload', '$.username') }}) as username_lower,
        {{ json_text('payload', '$.name') }} as display_name,
        cast(
            {{ json_fragment('payload', '$.public_metrics.followers_count') }} as bigint
        ) as followers_count,
        _loaded_at

    from source

)

select * from renamed
