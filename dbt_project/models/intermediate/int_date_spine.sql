{#- One row per UTC day from the first to the last day that has any X post or support-site
    request, or that a loaded or refused batch covers, so days without activity appear as
    zero rows in the marts, and days without data as rows whose coverage says why. -#}

with

posts as (

    select * from {{ ref('int_x__posts_classified') }}

),

support_site_days as (

    select * from {{ ref('int_support_site__daily_traffic') }}

),

batches as (

    select
        interval_start,
        interval_end
    from {{ ref('stg_pipeline__batches') }}
    union all
    select
        interval_start,
        interval_end
    from {{ ref('stg_pipeline__refusals') }}

),

activity_days as (

    select created_date as activity_date from posts
    where created_date is not null

    union all

    select date_day as activity_date from support_site_days

    union all

    select cast(interval_start as date) as activity_date from batches

    union all

    -- the last day an interval reaches (its end is exclusive)
    select cast(interval_end - interval 1 microsecond as date) as activity_date from batches

),

bounds as (

    select
        min(activity_date) as first_day,
        max(activity_date) as last_day

    from activity_days

),

final as (

    select {{ date_series('first_day', 'last_day') }} as date_day
    from bounds
    where first_day is not null

)

select * from final
