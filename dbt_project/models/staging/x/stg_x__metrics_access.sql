{#- One row per raw row of x.metrics_access: per batch and configured account, whether its
    own posts' private metrics were read (false: not authorised, unknown, never zero). -#}

with

source as (

    select * from {{ source('x', 'metrics_access') }}

),

renamed as (

    select
        batch_id,
        interval_start,
        interval_end,
        account_username,
        lower(account_username) as account_username_lower,
        coalesce(is_metrics_authorised, false) as is_metrics_authorised,
        _loaded_at

    from source

)

select * from renamed
