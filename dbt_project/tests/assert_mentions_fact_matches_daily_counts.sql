-- agg_daily_engagement's mention counts are the fct_x_mentions rows of the day, and each
-- account's mentions lie between the day's largest single-account count and the total
with

daily as (

    select * from {{ ref('agg_daily_engagement') }}

),

facts as (

    select
        created_date as date_day,
        count(*) as mentions,
        count(*) filter (where is_answered) as answered

    from {{ ref('fct_x_mentions') }}
    group by created_date

),

accounts as (

    select
        date_day,
        max(mentions) as max_account_mentions,
        sum(mentions) as sum_account_mentions

    from {{ ref('agg_daily_account_engagement') }}
    group by date_day

),

compared as (

    select
        daily.date_day,
        daily.x_mentions,
        daily.x_mentions_answered,
        coalesce(facts.mentions, 0) as fact_mentions,
        coalesce(facts.answered, 0) as fact_answered,
        coalesce(accounts.max_account_mentions, 0) as max_account_mentions,
        coalesce(accounts.sum_account_mentions, 0) as sum_account_mentions

    from daily
    left join facts
        on daily.date_day = facts.date_day
    left join accounts
        on daily.date_day = accounts.date_day

)

select * from compared
where
    x_mentions != fact_mentions
    or x_mentions_answered != fact_answered
    or x_mentions < max_account_mentions
    or x_mentions > sum_account_mentions
