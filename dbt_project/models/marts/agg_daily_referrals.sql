{#- Incremental: the days of int_support_site__changed_days are recomputed and replaced. -#}

{{
    config(
        materialized='incremental',
        incremental_strategy='replace_where',
        incremental_predicates=["date_day in " ~ support_site_days_to_recompute()],
    )
}}

-- depends_on: {{ ref('int_support_site__changed_days') }}

with

sessions as (

    select * from {{ ref('int_support_site__sessions') }}
    {% if is_incremental() -%}
        where {{ on_days('session_date', support_site_days_to_recompute()) }}
    {%- endif %}

),

final as (

    select
        session_date as date_day,
        channel,
        referrer_network,
        count(*) as sessions,
        cast(sum(page_views) as bigint) as page_views

    from sessions
    group by session_date, channel, referrer_network

)

select * from final
