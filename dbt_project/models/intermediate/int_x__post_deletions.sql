{#-
    One row per post (edit root) that was observed or reported missing, with whether it is
    deleted. Events are every observation of any version (timelines and metrics refresh)
    and every not-found lookup error about any version, dated by their batch's
    interval_end. The post is deleted when its most recent event is a not-found error (an
    error wins a tie with an observation of the same batch: the lookup runs after the
    timelines). A post seen again after an error is not deleted.

    A plain table rebuilt by every build that takes in X data (see macros/incremental.sql).
-#}

with

observations as (

    select * from {{ ref('int_x__post_observations') }}

),

versions as (

    select * from {{ ref('int_x__post_versions') }}

),

lookup_errors as (

    select * from {{ ref('int_x__post_lookup_errors') }}

),

events as (

    select
        versions.root_post_id,
        observations.observed_at as event_at,
        false as is_not_found

    from observations
    inner join versions
        on observations.post_id = versions.version_id

    union all

    select
        versions.root_post_id,
        lookup_errors.snapshot_at as event_at,
        true as is_not_found

    from lookup_errors
    inner join versions
        on lookup_errors.post_id = versions.version_id
    where lookup_errors.is_not_found

),

ranked as (

    select
        *,
        row_number() over (
            partition by root_post_id
            order by event_at desc, is_not_found desc
        ) as recency_rank

    from events

),

latest_events as (

    select
        root_post_id,
        is_not_found as is_deleted

    from ranked
    where recency_rank = 1

),

seen as (

    select
        root_post_id,
        min(event_at) filter (where not is_not_found) as first_seen_at,
        max(event_at) filter (where not is_not_found) as last_seen_at

    from events
    group by root_post_id

),

errors_after_last_seen as (

    select
        events.root_post_id,
        min(events.event_at) as deleted_seen_at

    from events
    inner join seen
        on events.root_post_id = seen.root_post_id
    where
        events.is_not_found
        and (seen.last_seen_at is null or events.event_at >= seen.last_seen_at)
    group by events.root_post_id

),

final as (

    select
        latest_events.root_post_id as post_id,
        seen.first_seen_at,
        seen.last_seen_at,
        latest_events.is_deleted,
        case when latest_events.is_deleted then errors_after_last_seen.deleted_seen_at end
            as deleted_seen_at

    from latest_events
    inner join seen
        on latest_events.root_post_id = seen.root_post_id
    left join errors_after_last_seen
        on latest_events.root_post_id = errors_after_last_seen.root_post_id

)

select * from final
