{#-
    Version 2: additive counts only (the rates are metrics, in fct_x_mentions.yml and
    fct_x_posts.yml, and agg_period_figures' columns).

    Coverage (agg_daily_source_coverage): x_status says whether X's data of the day is
    complete; the counts are null, never 0, on a day X is missing or refused (partial days
    keep their partial counts, marked). A day outside the coverage's range is missing.

    A plain table rebuilt by every build that takes in X data (see macros/incremental.sql).
-#}

with

days as (

    select * from {{ ref('int_date_spine') }}

),

accounts as (

    select * from {{ ref('int_x__accounts') }}

),

posts as (

    select * from {{ ref('int_x__posts_classified') }}

),

mention_accounts as (

    select * from {{ ref('int_x__mention_accounts') }}

),

mentions as (

    select * from {{ ref('fct_x_mentions') }}

),

coverage as (

    select
        date_day,
        any_value(status) as x_status

    from {{ ref('agg_daily_source_coverage') }}
    where source = 'x'
    group by date_day

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
        {{ mention_counts(rel='mentions.') }}

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
        {{ unless_missing('x', 'own_posts_daily.posts') }} as posts,
        {{ unless_missing('x', 'own_posts_daily.replies') }} as replies,
        {{ unless_missing('x', 'own_posts_daily.replies_to_customers') }} as replies_to_customers,
        {{ unless_missing('x', 'own_posts_daily.retweets') }} as retweets,
        {{ unless_missing('x', 'account_mentions_daily.mentions') }} as mentions,
        {{ unless_missing('x', 'account_mentions_daily.mentions_answered') }} as mentions_answered,
        {{ unless_missing('x', 'account_mentions_daily.mentions_waiting') }} as mentions_waiting,
        {{ unless_missing('x', 'account_mentions_daily.mentions_needing_answer') }}
            as mentions_needing_answer,
        {{ unless_missing('x', 'account_mentions_daily.mentions_needing_answer_answered') }}
            as mentions_needing_answer_answered,
        {{ unless_missing('x', 'account_mentions_daily.mentions_needing_answer_waiting') }}
            as mentions_needing_answer_waiting,
        {{ unless_missing('x', 'account_mentions_daily.mentions_needing_answer_within_target') }}
            as mentions_needing_answer_within_target,
        {{ unless_missing('x', 'account_mentions_daily.mentions_target_breached') }}
            as mentions_target_breached,
        {{ unless_missing('x', 'own_posts_daily.impressions') }} as impressions,
        {{ coverage_status('x') }} as x_status,
        {{ coverage_status('x') }} = 'complete' as is_complete

    from account_days
    left join own_posts_daily
        on
            account_days.date_day = own_posts_daily.date_day
            and account_days.account_id = own_posts_daily.account_id
    left join account_mentions_daily
        on
            account_days.date_day = account_mentions_daily.date_day
            and account_days.account_id = account_mentions_daily.account_id
    left join coverage
        on account_days.date_day = coverage.date_day

)

select * from final
