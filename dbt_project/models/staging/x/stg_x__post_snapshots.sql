{#-
    One row per raw row of x.post_snapshots: the company accounts' own recent posts as
    re-read by the metrics refresh (GET /2/tweets), parsed exactly like stg_x__posts by the
    x_post_payload_columns() macro. The snapshot is dated by the batch's interval_end.
-#}

with

source as (

    select * from {{ source('x', 'post_snapshots') }}

),

renamed as (

    select
        batch_id,
        interval_start,
        interval_end,
        interval_end as snapshot_at,
        {{ x_post_payload_columns('payload', 'post_id') }},
        _loaded_at

    from source

)

select * from renamed
