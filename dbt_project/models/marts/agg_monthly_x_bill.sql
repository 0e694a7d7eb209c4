{#-
    The X API bill per calendar month (UTC) and kind of read: the resources billed (each
    once per UTC day, as X bills them) and their cost, summed over the days of the
    extraction's ledger. Every kind has a row in every month with a bill.
-#}

with

days as (

    select
        *,
        cast(date_trunc('month', bill_day) as date) as month_start

    from {{ ref('stg_pipeline__x_bill_days') }}

),

kinds as (

    select kind_values.kind
    from
        (values ('post_reads'), ('user_reads'), ('dm_event_reads'), ('owned_reads'))
            as kind_values (kind)

),

months as (

    select distinct month_start
    from days

),

final as (

    select
        months.month_start,
        kinds.kind,
        cast(coalesce(sum(days.resources), 0) as bigint) as resources,
        cast(coalesce(sum(days.cost_usd), 0) as double) as cost_usd

    from months
    cross join kinds
    left join days
        on
            months.month_start = days.month_start
            and kinds.kind = days.kind
    group by months.month_start, kinds.kind

)

select * from final
