{#-
    The metrics refresh's error entries that name a post, kept per batch (see
    stg_x__post_lookup_errors).
-#}

with

lookup_errors as (

    select * from {{ ref('stg_x__post_lookup_errors') }}

),

final as (

    select
        batch_id,
        snapshot_at,
        post_id,
        is_not_found

    from lookup_errors
    where post_id is not null

)

select * from final
