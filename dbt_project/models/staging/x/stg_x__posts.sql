{#-
    One row per raw row (no de-duplication here): the timelines' post objects, parsed by
    the x_post_payload_columns() macro (shared with stg_x__post_snapshots).
-#}

with

source as (

    select * from {{ source('x', 'posts') }}

),

renamed as (

    select
        batch_id,
        interval_start,
        interval_end,
        account_username,
        account_id,
        endpoint,
        {{ x_post_payload_columns('payload', 'post_id') }},
        _loaded_at

    from source

)

select * from renamed
