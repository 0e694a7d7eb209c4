{#-
    Every X user object received (includes.users of the timelines), per batch (see
    stg_x__users).
-#}

with

users as (

    select * from {{ ref('stg_x__users') }}

),

final as (

    select
        batch_id,
        user_id,
        username,
        display_name

    from users
    where user_id is not null

)

select * from final
