{#- One row per channel a support-site session can come from (seed channels). -#}

with

channels as (

    select * from {{ ref('channels') }}

),

final as (

    select
        channel,
        channel_label,
        channel_description,
        is_social,
        is_external,
        sort_order

    from channels

)

select * from final
