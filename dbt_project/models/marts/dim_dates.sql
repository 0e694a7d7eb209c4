{#-
    One row per UTC day of the mart (int_date_spine: the first to the last day with any data),
    with the periods BI groups by. Also MetricFlow's time spine (dim_dates.yml).
-#}

with

days as (

    select * from {{ ref('int_date_spine') }}

),

final as (

    select
        date_day,
        cast(date_trunc('week', date_day) as date) as week_start,
        cast(date_trunc('month', date_day) as date) as month_start,
        cast(date_trunc('quarter', date_day) as date) as quarter_start,
        cast(year(date_day) as integer) as calendar_year,
        cast({{ iso_day_of_week('date_day') }} as integer) as iso_day_of_week,
        {{ iso_day_of_week('date_day') }} >= 6 as is_weekend

    from days

)

select * from final
