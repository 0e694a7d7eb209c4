{#-
    One row per UTC day and source (x, support_site), from the first to the last day any
    loaded or refused batch covers: is the source's data of that day complete?

    A batch counts on every day its interval overlaps. Daily batches are the norm; a batch
    spanning several days splits its figures (files read, lines read, records, quarantined
    and lost lines) over its days in proportion to the part of its interval on each day
    (rounded), and its damage or X gap makes every one of its days partial (where in the
    interval the lost data was is not known). covered_share is the union of the loaded
    intervals within the day (overlapping batches are not counted twice).

    Status: complete (loaded intervals cover the whole day, no file damaged, no X gap),
    partial (loaded, but a file damaged inside and the batch accepted partial, an X gap, or
    only part of the day loaded), refused (nothing loaded, a refused batch covers the day),
    missing (nothing loaded, nothing refused).
-#}

with

batches as (

    select * from {{ ref('stg_pipeline__batches') }}

),

refusals as (

    select * from {{ ref('stg_pipeline__refusals') }}

),

sources as (

    select source_names.source from (values ('x'), ('support_site')) as source_names (source)

),

-- the support site's files of each batch: read (not skipped), and damaged inside
batch_files as (

    select
        batch_id,
        source,
        {{ json_array_elements('manifest', '$.files') }} as file_entry

    from batches
    where source = 'support_site'

),

-- the fields of each file
batch_file_fields as (

    select
        batch_id,
        source,
        {{ json_text('file_entry', '$.path') }} as file_path,
        {{ json_text('file_entry', '$.skipped') }} as skipped,
        {{ json_text('file_entry', '$.read_error') }} as read_error,
        {{ json_text('file_entry', '$.damage_offset') }} as damage_offset,
        {{ json_text('file_entry', '$.lines_kept') }} as lines_kept,
        {{ json_text('file_entry', '$.lines_lost_estimate') }} as lines_lost_estimate,
        {{ json_text('file_entry', '$.bytes_unread') }} as bytes_unread

    from batch_files

),

-- a file cut short lost what was cut off: how many lines cannot be known
batch_files_flagged as (

    select
        *,
        coalesce(
            cast(bytes_unread as bigint) = 0
            and read_error like '%truncated%',
            false
        ) as is_loss_unknown

    from batch_file_fields

),

batch_files_described as (

    select
        *,
        regexp_extract(file_path, '[^/]+$', 0)
        || case
            when damage_offset is not null
                then ' damaged at byte ' || damage_offset || ': '
                    || coalesce(lines_kept, '?') || ' lines kept, '
                    || case
                        when is_loss_unknown
                            then 'the lines cut off its end lost (how many is unknown)'
                        else '~' || coalesce(lines_lost_estimate, '?') || ' lost'
                    end
            else ' damaged: ' || read_error
        end as file_damage

    from batch_files_flagged

),

file_facts as (

    select
        batch_id,
        source,
        count(*) filter (where skipped is null) as files_read,
        case
            when not bool_or(is_loss_unknown)
                then coalesce(
                        sum(cast(lines_lost_estimate as bigint))
                        filter (where read_error is not null),
                        0
                    )
        end as lines_lost,
        {{ string_agg_ordered('file_damage', "'; '", 'file_path') }}
        filter (where read_error is not null) as damage

    from batch_files_described
    group by batch_id, source

),

-- X: the reaches the API caps refused to serve (the batch is partial, not refused)
batch_gaps as (

    select
        batch_id,
        source,
        {{ json_array_elements('manifest', '$.gaps') }} as gap

    from batches
    where source = 'x'

),

batch_gap_fields as (

    select
        batch_id,
        source,
        {{ json_text('gap', '$.account') }} as gap_account,
        {{ json_text('gap', '$.endpoint') }} as gap_endpoint,
        {{ json_text('gap', '$.complete_from') }} as gap_complete_from,
        {{ json_text('gap', '$.cap') }} as gap_cap

    from batch_gaps

),

batch_gaps_described as (

    select
        *,
        'X gap: @' || gap_account || ' ' || gap_endpoint
        || ' older than ' || coalesce(gap_complete_from, 'the interval')
        || ' not served (API cap ' || gap_cap || ')' as gap_text

    from batch_gap_fields

),

gap_facts as (

    select
        batch_id,
        source,
        {{ string_agg_ordered('gap_text', "'; '", 'gap_account, gap_endpoint') }} as gap

    from batch_gaps_described
    group by batch_id, source

),

batch_facts as (

    select
        batches.source,
        batches.batch_id,
        batches.interval_start,
        batches.interval_end,
        batches.records,
        batches.quarantined,
        batches.loaded_at,
        file_facts.files_read,
        file_facts.lines_lost,
        file_facts.damage,
        gap_facts.gap,
        case
            when batches.source = 'support_site'
                then cast({{ json_text('batches.manifest', '$.lines_read') }} as bigint)
        end as lines_read

    from batches
    left join file_facts
        on batches.source = file_facts.source and batches.batch_id = file_facts.batch_id
    left join gap_facts
        on batches.source = gap_facts.source and batches.batch_id = gap_facts.batch_id

),

-- every (batch, day) its interval overlaps, with the part of the day and of the batch
batch_days as (

    select
        *,
        greatest(interval_start, date_day) as covered_from,
        least(interval_end, date_day + interval 1 day) as covered_to,
        {{ seconds_between('covered_from', 'covered_to') }}
        / nullif({{ seconds_between('interval_start', 'interval_end') }}, 0) as batch_fraction

    from (
        select
            *,
            {{ date_series(
                'cast(interval_start as date)',
                'cast(interval_end - interval 1 microsecond as date)'
            ) }} as date_day

        from batch_facts
        where interval_end > interval_start
    ) as batch_day_rows

),

-- the seconds of each day the loaded intervals cover, overlaps counted once
covered_pieces as (

    select
        source,
        date_day,
        covered_from,
        covered_to,
        max(covered_to) over (
            partition by source, date_day
            order by covered_from, covered_to
            rows between unbounded preceding and 1 preceding
        ) as covered_before

    from batch_days

),

covered as (

    select
        source,
        date_day,
        sum(greatest(
            {{ seconds_between(
                'greatest(covered_from, coalesce(covered_before, covered_from))', 'covered_to'
            ) }},
            0
        )) / 86400 as covered_share

    from covered_pieces
    group by source, date_day

),

loaded_days as (

    select
        source,
        date_day,
        count(*) as batches,
        sum(round(files_read * batch_fraction)) as files_read,
        sum(round(lines_read * batch_fraction)) as lines_read,
        sum(round(records * batch_fraction)) as records,
        sum(round(quarantined * batch_fraction)) as quarantined_lines,
        sum(round(lines_lost * batch_fraction)) as lines_lost,
        {{ string_agg_ordered('damage', "'; '", 'batch_id') }} as damage,
        {{ string_agg_ordered('gap', "'; '", 'batch_id') }} as gap,
        max(loaded_at) as loaded_at

    from batch_days
    group by source, date_day

),

refused_days as (

    select
        source,
        date_day,
        {{ arg_min('reason', 'interval_start') }} as first_reason

    from (
        select
            *,
            case
                when {{ json_is_array('reasons') }} then {{ json_text('reasons', '$[0]') }}
                else coalesce({{ json_text('reasons', '$') }}, 'no reason recorded')
            end as reason,
            {{ date_series(
                'cast(interval_start as date)',
                'cast(interval_end - interval 1 microsecond as date)'
            ) }} as date_day

        from refusals
        where interval_end > interval_start
    ) as refused_day_rows
    group by source, date_day

),

bounds as (

    select
        min(date_day) as first_day,
        max(date_day) as last_day

    from (
        select date_day from batch_days
        union all
        select date_day from refused_days
    ) as covered_days

),

days as (

    select {{ date_series('first_day', 'last_day') }} as date_day

    from bounds
    where first_day is not null

),

source_days as (

    select
        days.date_day,
        sources.source,
        loaded_days.batches,
        loaded_days.files_read,
        loaded_days.lines_read,
        loaded_days.records,
        loaded_days.quarantined_lines,
        loaded_days.lines_lost,
        loaded_days.damage,
        loaded_days.gap,
        loaded_days.loaded_at,
        refused_days.first_reason,
        coalesce(covered.covered_share, 0) as covered_share,
        case
            when loaded_days.batches is null and refused_days.first_reason is not null
                then 'refused'
            when loaded_days.batches is null then 'missing'
            when
                loaded_days.damage is not null
                or loaded_days.gap is not null
                or covered.covered_share < 1
                then 'partial'
            else 'complete'
        end as status

    from days
    cross join sources
    left join loaded_days
        on days.date_day = loaded_days.date_day and sources.source = loaded_days.source
    left join covered
        on days.date_day = covered.date_day and sources.source = covered.source
    left join refused_days
        on days.date_day = refused_days.date_day and sources.source = refused_days.source

),

final as (

    select
        date_day,
        source,
        status,
        case status
            when 'complete'
                then
                    'complete: '
                    || batches
                    || ' batch'
                    || case when batches > 1 then 'es' else '' end
                    || ' loaded'
            when 'refused' then 'refused by the gate: ' || first_reason
            when 'missing' then 'no batch loaded'
            else concat_ws(
                    '; ',
                    damage,
                    gap,
                    case
                        when covered_share < 1
                            then
                                'only ' || cast(round(100 * covered_share, 1) as string)
                                || '% of the day loaded'
                                || case
                                    when first_reason is not null
                                        then ', the rest refused by the gate: ' || first_reason
                                    else ''
                                end
                    end
                )
        end as status_reason,
        status = 'complete' as is_complete,
        cast(covered_share as double) as covered_share,
        cast(coalesce(batches, 0) as bigint) as batches,
        cast(files_read as bigint) as files_read,
        cast(lines_read as bigint) as lines_read,
        cast(records as bigint) as records,
        cast(quarantined_lines as bigint) as quarantined_lines,
        cast(
            case when source = 'support_site' and batches is not null then lines_lost end as bigint
        ) as lines_lost,
        loaded_at

    from source_days

)

select * from final
