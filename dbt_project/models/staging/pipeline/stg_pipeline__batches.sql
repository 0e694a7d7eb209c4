{#- One row per loaded batch (raw.main.batches), renamed. -#}

with

source as (

    select * from {{ source('pipeline', 'batches') }}

),

renamed as (

    select
        source,
        batch_id,
        interval_start,
        interval_end,
        version as batch_version,
        records,
        quarantined,
        manifest,
        _loaded_at as loaded_at

    from source

)

select * from renamed
