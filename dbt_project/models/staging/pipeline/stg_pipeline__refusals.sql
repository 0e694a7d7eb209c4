{#- One row per refused batch not loaded since (raw.main.refusals), renamed. -#}

with

source as (

    select * from {{ source('pipeline', 'refusals') }}

),

renamed as (

    select
        source,
        batch_id,
        interval_start,
        interval_end,
        version as batch_version,
        reasons,
        manifest,
        refused_at

    from source

)

select * from renamed
