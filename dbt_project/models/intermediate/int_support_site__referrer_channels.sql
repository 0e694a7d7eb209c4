{#-
    One row per distinct (referrer_host, utm_source, utm_medium) seen on the support site,
    classified into a channel and a referrer_network. First matching rule wins:

    1. email         utm_medium = 'email', or the referrer is a webmail host
                     (mail.google.com, outlook.live.com, outlook.office.com,
                     outlook.office365.com, mail.yahoo.com)
    2. internal      referrer host is one of var('support_site_hosts')
    3. own_site      referrer host is one of var('company_site_hosts')
    4. social / search / ai_assistant
                     referrer host matches the seed referrer_hosts (Matomo lists): after
                     dropping a leading 'www.' or 'm.', the host equals the pattern or ends
                     with '.' || pattern, '{}' matching any label(s) (google.{} matches
                     google.co.uk). Most specific (longest) pattern wins, then
                     ai_assistant > social > search.
    5. other         any other referrer host (referrer_network = the host)
    6. direct        no referrer and no utm parameters
    7. without a referrer but with utm tags: utm_source matched against the seed's network
                     names (case-insensitive; 'x' means Twitter) or host patterns
                     (utm_source=t.co); else utm_medium social -> social; else other.

    Incremental: only combinations not classified before are added. A classification
    depends only on the combination, the seed and the vars, which are part of the build's
    fingerprint (a change to them rebuilds everything).
-#}

{{ config(materialized='incremental', incremental_strategy='append') }}

with

requests as (

    select * from {{ ref('int_support_site__requests_classified') }}

),

referrers as (

    select distinct
        referrer_key,
        referrer_host,
        utm_source,
        utm_medium,
        {{ strip_host_prefix('referrer_host') }} as referrer_host_stripped,
        {{ strip_host_prefix('utm_source') }} as utm_source_stripped

    from requests
    {% if is_incremental() -%}
        where referrer_key not in (select referrer_key from {{ this }})
    {%- endif %}

),

seed_hosts as (

    select
        host_pattern,
        network,
        channel,
        length(replace(host_pattern, '{}', '')) as pattern_specificity,
        case channel
            when 'ai_assistant' then 1
            when 'social' then 2
            else 3
        end as channel_rank,
        '^(.*[.])?'
        || replace(
            replace({{ strip_host_prefix('lower(host_pattern)') }}, '.', '[.]'),
            '{}',
            '[a-z0-9-]+([.][a-z0-9-]+)?'
        )
        || '$' as host_regex

    from {{ ref('referrer_hosts') }}

),

webmail_hosts as (

    select
        webmail.host,
        webmail.network

    from (
        values
        ('mail.google.com', 'Gmail'),
        ('outlook.live.com', 'Outlook'),
        ('outlook.office.com', 'Outlook'),
        ('outlook.office365.com', 'Outlook'),
        ('mail.yahoo.com', 'Yahoo Mail')
    ) as webmail (host, network)

),

host_matches as (

    select
        referrers.referrer_key,
        seed_hosts.network,
        seed_hosts.channel,
        row_number() over (
            partition by referrers.referrer_key
            order by
                seed_hosts.pattern_specificity desc,
                seed_hosts.channel_rank asc,
                seed_hosts.network asc,
                seed_hosts.host_pattern asc
        ) as match_rank

    from referrers
    inner join seed_hosts
        on {{ regex_matches('referrers.referrer_host_stripped', 'seed_hosts.host_regex') }}

),

utm_source_matches as (

    select
        referrers.referrer_key,
        seed_hosts.network,
        seed_hosts.channel,
        row_number() over (
            partition by referrers.referrer_key
            order by
                seed_hosts.channel_rank asc,
                seed_hosts.pattern_specificity desc,
                seed_hosts.network asc,
                seed_hosts.host_pattern asc
        ) as match_rank

    from referrers
    inner join seed_hosts
        on
            lower(seed_hosts.network)
            = case when referrers.utm_source = 'x' then 'twitter' else referrers.utm_source end
            or {{ regex_matches('referrers.utm_source_stripped', 'seed_hosts.host_regex') }}
    where referrers.referrer_host is null

),

classified as (

    select
        referrers.referrer_key,
        referrers.referrer_host,
        referrers.utm_source,
        referrers.utm_medium,
        case
            when referrers.utm_medium = 'email' or webmail_hosts.host is not null then 'email'
            when referrers.referrer_host in ({{ lowercase_string_list(var('support_site_hosts')) }})
                then 'internal'
            when referrers.referrer_host in ({{ lowercase_string_list(var('company_site_hosts')) }})
                then 'own_site'
            when host_matches.channel is not null then host_matches.channel
            when referrers.referrer_host is not null then 'other'
            when referrers.utm_source is null and referrers.utm_medium is null then 'direct'
            when utm_source_matches.channel is not null then utm_source_matches.channel
            when referrers.utm_medium in ('social', 'social-media', 'social_media', 'sm')
                then 'social'
            else 'other'
        end as channel,
        webmail_hosts.network as webmail_network,
        host_matches.network as host_network,
        utm_source_matches.network as utm_network

    from referrers
    left join webmail_hosts
        on referrers.referrer_host = webmail_hosts.host
    left join host_matches
        on
            referrers.referrer_key = host_matches.referrer_key
            and host_matches.match_rank = 1
    left join utm_source_matches
        on
            referrers.referrer_key = utm_source_matches.referrer_key
            and utm_source_matches.match_rank = 1

),

final as (

    select
        referrer_key,
        referrer_host,
        utm_source,
        utm_medium,
        channel,
        case
            when channel = 'email' then coalesce(webmail_network, 'Email')
            when channel = 'internal' then 'Support site'
            when channel = 'own_site' then 'Company site'
            when channel = 'direct' then 'Direct'
            when referrer_host is not null then coalesce(host_network, referrer_host)
            else coalesce(utm_network, utm_source, 'Other')
        end as referrer_network

    from classified

)

select * from final
