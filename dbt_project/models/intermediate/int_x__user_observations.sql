{#-
    Every X user object received (includes.users of the timelines), per batch (see
    stg_x__users). Incremental like int_x__post_observations: the rows of the changed X
    batches replace those of the same batches, and the user ids of the replaced and of the
    new rows are recorded (kind x_user) for int_x__users.
-#}

{{
    config(
        materialized='incremental',
        incremental_strategy='replace_where',
        incremental_predicates=["batch_id in " ~ changed_batches('x')],
        pre_hook="{{ record_changed_keys('x_user', x_batch_keys(this, 'user_id')) }}",
        post_hook="{{ record_changed_keys('x_user', x_batch_keys(this, 'user_id')) }}",
    )
}}

with

users as (

    select * from {{ ref('stg_x__users') }}
    {% if is_incremental() -%}
        where {{ in_changed_batches('batch_id', 'x') }}
    {%- endif %}

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
