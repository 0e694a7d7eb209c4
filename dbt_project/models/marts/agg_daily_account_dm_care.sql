{#-
    One row per UTC day and company account: its DM care (fct_x_dm_requests, by the day
    the request began) and its care public and DM combined.

    is_dm_authorised: every X batch covering the day read the account's DMs (x.dm_access);
    false on a day no X batch covers. Every DM and combined figure is null, never 0, unless
    it is true and X's data of the day is not missing or refused (macro unless_dm_unknown):
    an account whose DMs were not read has unknown DMs. x_status and is_complete are
    agg_daily_source_coverage's, as in the other daily marts (partial days keep their
    partial figures, marked).

    The public part of the combined figures counts the mentions as
    agg_daily_account_engagement does (every account a mention addresses, mention_counts()).

    A plain table rebuilt by every build that takes in X data (see macros/incremental.sql).
-#}

{%- set authorised = 'account_days.is_dm_authorised' %}

with

days as (

    select * from {{ ref('int_date_spine') }}

),

accounts as (

    select * from {{ ref('int_x__accounts') }}

),

batches as (

    select * from {{ ref('stg_pipeline__batches') }}

),

dm_access as (

    select * from {{ ref('stg_x__dm_access') }}

),

messages as (

    select * from {{ ref('int_x__dm_messages') }}

),

requests as (

    select * from {{ ref('fct_x_dm_requests') }}

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

-- every UTC day each X batch's interval overlaps
x_batch_days as (

    select
        batch_id,
        {{ date_series(
            'cast(interval_start as date)', 'cast(interval_end - interval 1 microsecond as date)'
        ) }} as date_day

    from batches
    where source = 'x' and interval_end > interval_start

),

-- an account's DMs of a day are known when every X batch of the day read them
authorised_days as (

    select
        x_batch_days.date_day,
        accounts.account_id,
        bool_and(coalesce(dm_access.is_dm_authorised, false)) as is_dm_authorised

    from x_batch_days
    cross join accounts
    left join dm_access
        on
            x_batch_days.batch_id = dm_access.batch_id
            and accounts.account_username_lower = dm_access.account_username_lower
    group by x_batch_days.date_day, accounts.account_id

),

account_days as (

    select
        days.date_day,
        accounts.account_id,
        accounts.account_username,
        coalesce(authorised_days.is_dm_authorised, false) as is_dm_authorised

    from days
    cross join accounts
    left join authorised_days
        on
            days.date_day = authorised_days.date_day
            and accounts.account_id = authorised_days.account_id

),

conversations_daily as (

    select
        account_id,
        created_date as date_day,
        count(distinct dm_conversation_id) as dm_conversations_with_customers

    from messages
    where is_from_customer
    group by account_id, created_date

),

requests_daily as (

    select
        requests.account_id,
        requests.requested_date as date_day,
        {{ dm_request_counts(rel='requests.') }},
        median(requests.first_response_minutes) as median_dm_first_response_minutes,
        {{ quantile_cont('requests.first_response_minutes', 0.9) }}
            as p90_dm_first_response_minutes,
        median(requests.first_response_business_minutes)
            as median_dm_first_response_business_minutes,
        {{ quantile_cont('requests.first_response_business_minutes', 0.9) }}
            as p90_dm_first_response_business_minutes

    from requests
    group by requests.account_id, requests.requested_date

),

account_mentions as (

    select
        mention_accounts.account_id,
        mentions.*

    from mention_accounts
    inner join mentions
        on mention_accounts.mention_id = mentions.mention_id

),

mentions_daily as (

    select
        account_mentions.account_id,
        account_mentions.created_date as date_day,
        {{ mention_counts(rel='account_mentions.') }}

    from account_mentions
    group by account_mentions.account_id, account_mentions.created_date

),

-- the answered requests needing an answer, public and DM, with their first response
combined_responses as (

    select
        account_id,
        created_date as date_day,
        first_response_minutes

    from account_mentions
    where needs_answer and is_answered

    union all

    select
        account_id,
        requested_date as date_day,
        first_response_minutes

    from requests
    where is_answered

),

combined_daily as (

    select
        account_id,
        date_day,
        median(first_response_minutes) as combined_median_first_response_minutes

    from combined_responses
    group by account_id, date_day

),

figures as (

    select
        account_days.date_day,
        account_days.account_id,
        account_days.account_username,
        account_days.is_dm_authorised,
        {{ unless_dm_unknown(authorised, 'conversations_daily.dm_conversations_with_customers') }}
            as dm_conversations_with_customers,
        {{ unless_dm_unknown(authorised, 'requests_daily.dm_requests') }}
            as dm_requests,
        {{ unless_dm_unknown(authorised, 'requests_daily.dm_requests_answered') }}
            as dm_requests_answered,
        {{ unless_dm_unknown(authorised, 'requests_daily.dm_requests_waiting') }}
            as dm_requests_waiting,
        {{ unless_dm_unknown(authorised, 'requests_daily.dm_requests_within_target') }}
            as dm_requests_within_target,
        {{ unless_dm_unknown(authorised, 'requests_daily.dm_requests_target_breached') }}
            as dm_requests_target_breached,
        {{ unless_dm_unknown(
            authorised, 'requests_daily.median_dm_first_response_minutes', is_count=false
        ) }} as median_dm_first_response_minutes,
        {{ unless_dm_unknown(
            authorised, 'requests_daily.p90_dm_first_response_minutes', is_count=false
        ) }} as p90_dm_first_response_minutes,
        {{ unless_dm_unknown(
            authorised, 'requests_daily.median_dm_first_response_business_minutes', is_count=false
        ) }} as median_dm_first_response_business_minutes,
        {{ unless_dm_unknown(
            authorised, 'requests_daily.p90_dm_first_response_business_minutes', is_count=false
        ) }} as p90_dm_first_response_business_minutes,
        {{ unless_dm_unknown(authorised, 'mentions_daily.mentions_needing_answer') }}
            as mentions_needing_answer,
        {{ unless_dm_unknown(authorised, 'mentions_daily.mentions_needing_answer_answered') }}
            as mentions_needing_answer_answered,
        {{ unless_dm_unknown(authorised, 'mentions_daily.mentions_needing_answer_waiting') }}
            as mentions_needing_answer_waiting,
        {{ unless_dm_unknown(
            authorised, 'combined_daily.combined_median_first_response_minutes', is_count=false
        ) }} as combined_median_first_response_minutes,
        {{ coverage_status('x') }} as x_status,
        {{ coverage_status('x') }} = 'complete' as is_complete

    from account_days
    left join conversations_daily
        on
            account_days.date_day = conversations_daily.date_day
            and account_days.account_id = conversations_daily.account_id
    left join requests_daily
        on
            account_days.date_day = requests_daily.date_day
            and account_days.account_id = requests_daily.account_id
    left join mentions_daily
        on
            account_days.date_day = mentions_daily.date_day
            and account_days.account_id = mentions_daily.account_id
    left join combined_daily
        on
            account_days.date_day = combined_daily.date_day
            and account_days.account_id = combined_daily.account_id
    left join coverage
        on account_days.date_day = coverage.date_day

),

final as (

    select
        date_day,
        account_id,
        account_username,
        is_dm_authorised,
        cast(dm_conversations_with_customers as bigint) as dm_conversations_with_customers,
        cast(dm_requests as bigint) as dm_requests,
        cast(dm_requests_answered as bigint) as dm_requests_answered,
        cast(dm_requests_waiting as bigint) as dm_requests_waiting,
        {{ response_rate('dm_requests_answered', 'dm_requests', 'dm_requests_waiting') }}
            as dm_response_rate,
        cast(median_dm_first_response_minutes as double) as median_dm_first_response_minutes,
        cast(p90_dm_first_response_minutes as double) as p90_dm_first_response_minutes,
        cast(median_dm_first_response_business_minutes as double)
            as median_dm_first_response_business_minutes,
        cast(p90_dm_first_response_business_minutes as double)
            as p90_dm_first_response_business_minutes,
        cast(dm_requests_within_target as bigint) as dm_requests_within_target,
        cast(dm_requests_target_breached as bigint) as dm_requests_target_breached,
        cast(mentions_needing_answer + dm_requests as bigint) as combined_requests_needing_answer,
        cast(mentions_needing_answer_answered + dm_requests_answered as bigint)
            as combined_requests_answered,
        cast(mentions_needing_answer_waiting + dm_requests_waiting as bigint)
            as combined_requests_waiting,
        {{ response_rate(
            'mentions_needing_answer_answered + dm_requests_answered',
            'mentions_needing_answer + dm_requests',
            'mentions_needing_answer_waiting + dm_requests_waiting',
        ) }} as combined_response_rate,
        cast(combined_median_first_response_minutes as double)
            as combined_median_first_response_minutes,
        x_status,
        is_complete

    from figures

)

select * from final
