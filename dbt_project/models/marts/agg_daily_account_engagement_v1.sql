{#-
    Version 1 (deprecated, see the deprecation_date in agg_daily_account_engagement.yml):
    version 2 with the daily ratios and the daily median first response that version 2
    leaves to the metrics. A plain table rebuilt by every build.
-#}

{{ config(materialized='table') }}

with

account_days as (

    select * from {{ ref('agg_daily_account_engagement', v=2) }}

),

mention_accounts as (

    select * from {{ ref('int_x__mention_accounts') }}

),

mentions as (

    select * from {{ ref('fct_x_mentions', v=2) }}

),

first_responses_daily as (

    select
        mention_accounts.account_id,
        mentions.created_date as date_day,
        median(mentions.first_response_minutes) as median_first_response_minutes

    from mention_accounts
    inner join mentions
        on mention_accounts.mention_id = mentions.mention_id
    where mentions.is_answered
    group by mention_accounts.account_id, mentions.created_date

),

final as (

    select
        account_days.date_day,
        account_days.account_id,
        account_days.account_username,
        account_days.posts,
        account_days.replies,
        account_days.replies_to_customers,
        account_days.retweets,
        account_days.mentions,
        account_days.mentions_answered,
        case
            when account_days.mentions > 0
                then account_days.mentions_answered / account_days.mentions
        end as response_rate,
        first_responses_daily.median_first_response_minutes,
        case
            when account_days.posts + account_days.replies_to_customers > 0
                then
                    account_days.replies_to_customers
                    / (account_days.posts + account_days.replies_to_customers)
        end as conversation_share,
        account_days.impressions

    from account_days
    left join first_responses_daily
        on
            account_days.date_day = first_responses_daily.date_day
            and account_days.account_id = first_responses_daily.account_id

)

select * from final
