{#-
    One row per post, identified by the root of its edit chain (see int_x__post_versions):
    an edited post counts once, under a stable id.

    Content and metrics come from one observation: of the newest version received
    (highest numeric id), its most recent observation (latest interval_end; on a tie the
    metrics refresh beats the timelines, which are read before it; then latest _loaded_at,
    longest edit history and fixed tie-breakers so the choice is deterministic).
    created_at is that of the oldest version received (the original when it was seen).
    References (replied_to / quoted / retweeted) and conversation_id are mapped to roots,
    so a reply to any version of a post answers that post.

    Deleted posts (int_x__post_deletions) keep their row, so counts do not change, but
    their text is nulled here, before any mart can show it.

    A plain table rebuilt by every build that takes in X data (see macros/incremental.sql).
-#}

with

observations as (

    select * from {{ ref('int_x__post_observations') }}

),

versions as (

    select * from {{ ref('int_x__post_versions') }}

),

deletions as (

    select * from {{ ref('int_x__post_deletions') }}

),

rooted_observations as (

    select
        observations.*,
        versions.root_post_id

    from observations
    inner join versions
        on observations.post_id = versions.version_id

),

ranked as (

    select
        *,
        row_number() over (
            partition by root_post_id
            order by
                {{ numeric_id('post_id') }} desc,
                post_id desc,
                observed_at desc,
                observed_via = 'lookup' desc,
                _loaded_at desc,
                edit_history_count desc,
                batch_id desc,
                observed_via desc,
                account_username asc nulls last,
                cast(payload as string) asc nulls last
        ) as version_rank

    from rooted_observations

),

latest_observations as (

    select * from ranked
    where version_rank = 1

),

root_summaries as (

    select
        root_post_id,
        min(created_at) as created_at,
        count(distinct post_id) as received_version_count

    from rooted_observations
    group by root_post_id

),

known_versions as (

    select
        root_post_id,
        count(*) as known_version_count,
        {{ ordered_list_agg('version_id', [numeric_id('version_id'), 'version_id']) }}
            as version_ids

    from versions
    group by root_post_id

),

joined as (

    select
        latest_observations.root_post_id as post_id,
        latest_observations.post_id as latest_version_id,
        latest_observations.author_id,
        root_summaries.created_at,
        latest_observations.created_at as latest_version_created_at,
        latest_observations.post_text,
        latest_observations.lang,
        coalesce(conversation_versions.root_post_id, latest_observations.conversation_id)
            as conversation_id,
        latest_observations.in_reply_to_user_id,
        coalesce(replied_versions.root_post_id, latest_observations.replied_to_post_id)
            as replied_to_post_id,
        coalesce(quoted_versions.root_post_id, latest_observations.quoted_post_id)
            as quoted_post_id,
        coalesce(retweeted_versions.root_post_id, latest_observations.retweeted_post_id)
            as retweeted_post_id,
        latest_observations.replied_to_post_id as replied_to_version_id,
        latest_observations.mentioned_user_ids,
        latest_observations.mentioned_usernames,
        latest_observations.edit_history_post_ids,
        latest_observations.edit_history_count,
        known_versions.version_ids,
        known_versions.known_version_count,
        root_summaries.received_version_count,
        latest_observations.retweet_count,
        latest_observations.reply_count,
        latest_observations.like_count,
        latest_observations.quote_count,
        latest_observations.bookmark_count,
        latest_observations.impression_count,
        latest_observations.observed_at as metrics_observed_at,
        latest_observations.observed_via as source_endpoint,
        latest_observations.account_username as source_account_username,
        latest_observations.batch_id as source_batch_id,
        coalesce(deletions.is_deleted, false) as is_deleted,
        deletions.deleted_seen_at,
        deletions.first_seen_at,
        deletions.last_seen_at

    from latest_observations
    inner join root_summaries
        on latest_observations.root_post_id = root_summaries.root_post_id
    inner join known_versions
        on latest_observations.root_post_id = known_versions.root_post_id
    left join deletions
        on latest_observations.root_post_id = deletions.post_id
    left join versions as conversation_versions
        on latest_observations.conversation_id = conversation_versions.version_id
    left join versions as replied_versions
        on latest_observations.replied_to_post_id = replied_versions.version_id
    left join versions as quoted_versions
        on latest_observations.quoted_post_id = quoted_versions.version_id
    left join versions as retweeted_versions
        on latest_observations.retweeted_post_id = retweeted_versions.version_id

),

final as (

    select
        post_id,
        latest_version_id,
        author_id,
        created_at,
        latest_version_created_at,
        -- deleted posts: the platform's terms require that their content is not shown
        case when not is_deleted then post_text end as post_text,
        lang,
        conversation_id,
        in_reply_to_user_id,
        replied_to_post_id,
        quoted_post_id,
        retweeted_post_id,
        replied_to_version_id,
        mentioned_user_ids,
        mentioned_usernames,
        edit_history_post_ids,
        edit_history_count,
        version_ids,
        known_version_count - 1 as edit_count,
        known_version_count > 1 as is_edited,
        received_version_count,
        retweet_count,
        reply_count,
        like_count,
        quote_count,
        bookmark_count,
        impression_count,
        metrics_observed_at,
        source_endpoint,
        source_account_username,
        source_batch_id,
        is_deleted,
        deleted_seen_at,
        first_seen_at,
        last_seen_at

    from joined

)

select * from final
