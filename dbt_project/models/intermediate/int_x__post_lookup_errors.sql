{#-
    The metrics refresh's error entries that name a post, kept per batch (see
    stg_x__post_lookup_errors). Incremental like int_x__post_observations: the rows of the
    changed X batches replace those of the same batches, and the post ids of the replaced
    and of the new rows are recorded (kind x_version) for the models after it.
-#}

{{
    config(
        materialized='incremental',
        incremental_strategy='replace_where',
        incremental_predicates=["batch_id in " ~ changed_batches('x')],
        pre_hook="{{ record_changed_keys('x_version', x_batch_keys(this, 'post_id')) }}",
        post_hook="{{ record_changed_keys('x_version', x_batch_keys(this, 'post_id')) }}",
    )
}}

with

lookup_errors as (

    select * from {{ ref('stg_x__post_lookup_errors') }}
    {% if is_incremental() -%}
        where {{ in_changed_batches('batch_id', 'x') }}
    {%- endif %}

),

final as (

    select
        batch_id,
        snapshot_at,
        post_id,
        is_not_found

    from lookup_errors
    where post_id is not null

)

select * from final
