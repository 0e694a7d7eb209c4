{#-
    One row per support-site session of a person (bots and other programs excluded): see
    int_support_site__sessions for how page views are grouped into sessions and how a
    session gets its channel.

    Incremental: the sessions near the changed days are replaced, as in
    int_support_site__sessions. The hooks record the days of the rows replaced, before and
    after, so that publishing replaces those days in the published copy
    (record_unpublished_keys) instead of copying the whole history.
-#}

{{
    config(
        materialized='incremental',
        incremental_strategy='replace_where',
        incremental_predicates=[session_near_changed_days()],
        pre_hook="{{ record_unpublished_keys('session_date', session_days_near_changed_days()) }}",
        post_hook="{{ record_unpublished_keys('session_date', session_days_near_changed_days()) }}",
    )
}}

with

sessions as (

    select * from {{ ref('int_support_site__sessions') }}
    {% if is_incremental() -%}
        where {{ session_near_changed_days() }}
    {%- endif %}

),

final as (

    select
        session_id,
        visitor_id,
        site,
        session_started_at,
        session_ended_at,
        session_date,
        session_duration_seconds,
        page_views,
        page_views = 1 as is_bounce,
        landing_path,
        channel,
        referrer_network,
        referrer_host,
        utm_source,
        utm_medium

    from sessions

)

select * from final
