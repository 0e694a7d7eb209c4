with

source as (

    select * from {{ source('x', 'accounts') }}

),

renamed as (

    select
        batch_id,
        interval_start,
        interval_end,
        coalesce(user_id, {{ json_text('payload', '$.id') }}) as user_id,
        coalesce(username, {{ json_text('payload', '$.username') }}) as username,
        lower(coalesce(username, {{ json_text('payload', '$.username') }})) as username_lower,
        {{ json_text('payload', '$.name') }} as display_name,
        {{ parse_x_timestamp(json_text('payload', '$.created_at')) }} as account_created_at,
        cast(
            {{ json_fragment('payload', '$.public_metrics.followers_count') }} as bigint
        ) as followers_count,
        cast(
            {{ json_fragment('payload', '$.public_metrics.following_count') }} as bigint
        ) as following_count,
        cast(
            coalesce(
                {{ json_fragment('payload', '$.public_metrics.post_count') }},
                {{ json_fragment('payload', '$.public_metrics.tweet_count') }}
            ) as bigint
        ) as post_count,
        _loaded_at

    from source

)

select * from renamed
