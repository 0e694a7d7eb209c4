{#-
    One row per raw row of x.gaps: an account's timeline or mentions for a batch's interval
    reached past what the API serves (its 3,200 most recent posts / 800 most recent
    mentions), so the interval is only complete from complete_from on.
-#}

with

source as (

    select * from {{ source('x', 'gaps') }}

),

renamed as (

    select
        batch_id,
        interval_start,
        interval_end,
        account_username,
        lower(account_username) as account_username_lower,
        endpoint,
        cap,
        newer_than_interval,
        returned,
        {{ parse_x_timestamp('complete_from') }} as complete_from,
        _loaded_at

    from source

)

select * from renamed
