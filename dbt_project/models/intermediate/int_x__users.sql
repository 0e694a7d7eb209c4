{#- One row per X user seen anywhere (includes.users and the configured accounts), with the
    most recent username. The accounts' own lookups win over includes.users.

    A plain table rebuilt by every build that takes in X data (see macros/incremental.sql). -#}

with

users as (

    select * from {{ ref('int_x__user_observations') }}

),

accounts as (

    select * from {{ ref('int_x__accounts') }}

),

candidates as (

    select
        account_id as user_id,
        account_username as username,
        display_name,
        0 as source_rank,
        cast(null as string) as batch_id

    from accounts

    union all

    select
        user_id,
        username,
        display_name,
        1 as source_rank,
        batch_id

    from users

),

ranked as (

    select
        *,
        row_number() over (
            partition by user_id
            order by source_rank asc, batch_id desc, username asc nulls last
        ) as recency_rank

    from candidates

),

final as (

    select
        user_id,
        username,
        display_name

    from ranked
    where recency_rank = 1

)

select * from final
