{#- One row per configured company account (every user id ever listed in x.accounts),
    with its most recent username and profile. Rebuilt whole on each build (a few rows per
    batch); its hooks record the accounts (kind x_user, old and new ids) and, once until a
    build is green, their ids and usernames (kind x_accounts, see x_accounts_changed()). -#}

{{
    config(
        pre_hook=[
            "{{ record_accounts_snapshot() }}",
            "{{ record_changed_keys('x_user', 'select account_id from ' ~ this) }}",
        ],
        post_hook="{{ record_changed_keys('x_user', 'select account_id from ' ~ this) }}",
    )
}}

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
