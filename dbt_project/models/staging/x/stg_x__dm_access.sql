{#- One row per raw row of x.dm_access: per batch and configured account, whether its DMs
    were read (false: unknown, never zero). -#}

with

source as (

    select * from {{ source('x', 'dm_access') }}

),

renamed as (

    select
        batch_id,
        interval_start,
        interval_end,
        account_username,
        lower(account_username) as account_username_lower,
        coalesce(is_dm_authorised, false) as is_dm_authorised,
        _loaded_at

    from source

)

select * from renamed
