{#-
    The reply funnel per day and company account: fct_x_reply_funnel's replies counted on
    the day they were posted, for the account that posted them, with their visits (the
    sessions credited to them, which start within 24 hours of the reply: on its day or the
    next), the visits reaching an answer page, and the customers who came back. Counts only,
    which add up over any period; the rates are fct_x_reply_funnel's metrics.

    A mart of its own rather than columns of agg_daily_account_engagement: it reads both
    sources (X and the support site) with a coverage of each, and that versioned mart's
    columns are a published contract (a new column there is a new version).

    Coverage (agg_daily_source_coverage): the X counts (replies, returns) are null, never 0,
    on a day X is missing or refused; the visit counts are null on a day X or the support
    site is missing or refused (the visits of a day's replies that started the next day are
    missing when that next day is). A day outside the coverage's range is missing.

    A plain table rebuilt by every build, as fct_x_reply_funnel.
-#}

with

days as (

    select * from {{ ref('int_date_spine') }}

),

accounts as (

    select * from {{ ref('int_x__accounts') }}

),

replies as (

    select * from {{ ref('fct_x_reply_funnel') }}

),

coverage as (

    select
        date_day,
        any_value(status) filter (where source = 'x') as x_status,
        any_value(status) filter (where source = 'support_site') as support_site_status

    from {{ ref('agg_daily_source_coverage') }}
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

replies_daily as (

    select
        created_date as date_day,
        account_id,
        count(*) as replies_with_links,
        count(*) filter (where attributed_sessions > 0) as replies_with_visits,
        cast(sum(attributed_sessions) as bigint) as visits,
        cast(sum(answer_page_sessions) as bigint) as answer_page_visits,
        count(*) filter (where has_answer_page_visit) as replies_with_answer_page_visit,
        count(*) filter (where has_customer_returned) as replies_customer_returned,
        count(*) filter (where has_customer_returned is null) as replies_return_undecided

    from replies
    group by created_date, account_id

),

final as (

    select
        account_days.date_day,
        account_days.account_id,
        account_days.account_username,
        {{ unless_missing('x', 'replies_daily.replies_with_links') }} as replies_with_links,
        case
            when {{ coverage_status('support_site') }} not in ('missing', 'refused')
                then {{ unless_missing('x', 'replies_daily.replies_with_visits') }}
        end as replies_with_visits,
        case
            when {{ coverage_status('support_site') }} not in ('missing', 'refused')
                then {{ unless_missing('x', 'replies_daily.visits') }}
        end as visits,
        case
            when {{ coverage_status('support_site') }} not in ('missing', 'refused')
                then {{ unless_missing('x', 'replies_daily.answer_page_visits') }}
        end as answer_page_visits,
        case
            when {{ coverage_status('support_site') }} not in ('missing', 'refused')
                then {{ unless_missing('x', 'replies_daily.replies_with_answer_page_visit') }}
        end as replies_with_answer_page_visit,
        {{ unless_missing('x', 'replies_daily.replies_customer_returned') }}
            as replies_customer_returned,
        {{ unless_missing('x', 'replies_daily.replies_return_undecided') }}
            as replies_return_undecided,
        {{ coverage_status('x') }} as x_status,
        {{ coverage_status('support_site') }} as support_site_status,
        (
            {{ coverage_status('x') }} = 'complete'
            and {{ coverage_status('support_site') }} = 'complete'
        ) as is_complete

    from account_days
    left join replies_daily
        on
            account_days.date_day = replies_daily.date_day
            and account_days.account_id = replies_daily.account_id
    left join coverage
        on account_days.date_day = coverage.date_day

)

select * from final
