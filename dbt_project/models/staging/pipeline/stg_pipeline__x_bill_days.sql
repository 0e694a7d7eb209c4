{#- One row per UTC day and kind of X read billed (raw.main.x_bill_days), renamed. -#}

with

source as (

    select * from {{ source('pipeline', 'x_bill_days') }}

),

renamed as (

    select
        day as bill_day,
        kind,
        resources,
        cost as cost_usd

    from source

)

select * from renamed
