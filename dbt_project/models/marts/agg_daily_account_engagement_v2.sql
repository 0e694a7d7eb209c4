{#-
    Version 2: additive counts only (the rates are metrics: see _marts__semantic_models.yml).

    Incremental: the days of engagement_days() (macros/incremental.sql) are recomputed; days
    that left the date spine are deleted.
-#}

{{
    config(
        materialized='incremental',
        incremental_strategy='replace_where',
        incremental_predicates=[engagement_days_replaced()],
    )
}}

-- depends_on: {{ ref('int_support_site__changed_days') }}

with

days as (

    {{ engagement_days(ref('int_date_spine')) }}

),

accounts as (

    select * from {{ ref('int_x__accounts') }}

),

posts as (

    select * from {{ ref('int_x__posts_classified') }}
    {% if is_incremental() -%}
        where created_date in (select date_day from days)
    {%- endif %}

),

mention_accounts as (

    select * from {{ ref('int_x__mention_accounts') }}

),

mentions as (

    select * from {{ ref('int_x__mentions_responses') }}
    {% if is_incremental() -%}
        where created_date in (select date_day from days)
    {%- endif %}

),

account_days as (

    select
        days.date_day,
        accounts.account_id,
        accounts.account_username

    from days
    cross join accounts

),

own_posts_daily as (

    select
        created_date as date_day,
        author_id as account_id,
        count(*) filter (where post_type in ('original', 'quote')) as posts,
        count(*) filter (where post_type = 'reply') as replies,
        count(*) filter (where is_reply_to_customer) as replies_to_customers,
        count(*) filter (where post_type = 'retweet') as retweets,
        cast(
            coalesce(sum(impression_count) filter (where post_type != 'retweet'), 0) as bigint
        ) as impressions

    from posts
    where is_own
    group by created_date, author_id

),

account_mentions_daily as (

    select
        mention_accounts.account_id,
        mentions.created_date as date_day,
        count(*) as mentions,
        count(*) filter (where mentions.is_answered) as mentions_answered

    from mention_accounts
    inner join mentions
        on mention_accounts.mention_id = mentions.mention_id
    group by mention_accounts.account_id, mentions.created_date

),

final as (

    select
        account_days.date_day,
        account_days.account_id,
        account_days.account_username,
        coalesce(own_posts_daily.posts, 0) as posts,
        coalesce(own_posts_daily.replies, 0) as replies,
        coalesce(own_posts_daily.replies_to_customers, 0) as replies_to_customers,
        coalesce(own_posts_daily.retweets, 0) as retweets,
        coalesce(account_mentions_daily.mentions, 0) as mentions,
        coalesce(account_mentions_daily.mentions_answered, 0) as mentions_answered,
        coalesce(own_posts_daily.impressions, 0) as impressions

    from account_days
    left join own_posts_daily
        on
            account_days.date_day = own_posts_daily.date_day
            and account_days.account_id = own_posts_daily.account_id
    left join account_mentions_daily
        on
            account_days.date_day = account_mentions_daily.date_day
            and account_days.account_id = account_mentions_daily.account_id

)

select * from final
