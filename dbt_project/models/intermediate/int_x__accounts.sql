{#- One row per configured company account (every user id ever listed in x.accounts),
    with its most recent username and profile. A plain table, as are all X
    models. -#}

with

accounts as (

    select * from {{ ref('stg_x__accounts') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by user_id
            order by interval_end desc, batch_id desc, _loaded_at desc
        ) as recency_rank

    from accounts
    where user_id is not null

),

final as (

    select
        user_id as account_id,
        username as account_username,
        username_lower as account_username_lower,
        display_name,
        account_created_at,
        followers_count,
        following_count,
        post_count

    from ranked
    where recency_rank = 1

)

select * from final
