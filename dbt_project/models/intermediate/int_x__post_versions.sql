{#-
    The version map: one row per post id ever seen (as a received post, in an edit history
    or in a lookup error) with the root of its edit chain. Editing a post on X creates a
    new id; every version carries the chain [original id, ..., its id], so the root (the
    post's stable identity) is the first id of an edit history that lists the id, else the
    id itself. Should copies disagree, the numerically smallest candidate wins (ids grow
    with time, and the original is the oldest), followed one hop further.

    A plain table rebuilt by every build that takes in X data (see macros/incremental.sql).
-#}

with

observations as (

    select * from {{ ref('int_x__post_observations') }}

),

lookup_errors as (

    select * from {{ ref('int_x__post_lookup_errors') }}

),

observed_ids as (

    select
        post_id as version_id,
        coalesce({{ list_element('edit_history_post_ids', 1) }}, post_id) as candidate_root_id,
        cast(null as integer) as version_number,
        true as is_observed

    from observations

),

history_entries as (

    select
        {{ unnest_list_with_position('edit_history_post_ids', 'version_id', 'version_number') }},
        {{ list_element('edit_history_post_ids', 1) }} as candidate_root_id

    from observations
    where edit_history_count > 0

),

history_ids as (

    select
        version_id,
        candidate_root_id,
        version_number,
        false as is_observed

    from history_entries

),

error_ids as (

    select
        post_id as version_id,
        post_id as candidate_root_id,
        cast(null as integer) as version_number,
        false as is_observed

    from lookup_errors
    where post_id is not null

),

all_candidates as (

    select * from observed_ids
    union all
    select * from history_ids
    union all
    select * from error_ids

),

candidates as (

    select * from all_candidates

),

first_hop as (

    select
        version_id,
        {{ arg_min(
            'candidate_root_id', '(' ~ numeric_id('candidate_root_id') ~ ', candidate_root_id)'
        ) }}
            as root_post_id,
        max(version_number) as version_number,
        bool_or(is_observed) as is_observed

    from candidates
    where version_id is not null
    group by version_id

),

final as (

    select
        first_hop.version_id,
        coalesce(root_hop.root_post_id, first_hop.root_post_id) as root_post_id,
        first_hop.root_post_id as first_hop_root_id,
        first_hop.version_number,
        first_hop.is_observed

    from first_hop
    left join first_hop as root_hop
        on first_hop.root_post_id = root_hop.version_id

)

select * from final
