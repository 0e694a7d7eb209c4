{#-
    One row per own post (edit root, as in fct_x_posts) and support-site path it links to:
    the links per-post link attribution credits sessions to (fct_x_post_attributed_sessions).

    - Links: the `entities.urls[].expanded_url` of every version of the post received (an
      edit that changed a link leaves both paths: the old one was live, and clicked, until
      the edit). A link counts when it is http(s) and its host (lowercased, without port)
      is one of var('support_site_hosts'); its path is normalised (normalized_url_path: no
      query string, fragment or trailing slash) as the landing paths are.
    - Own posts: written by a company account, of any type but retweets (a retweet's links
      are someone else's post; clicks on it are credited to that post if it is an own
      post). Replies and quotes count: their links are the company's own words.
    - Deleted posts keep their links (their clicks happened while they were up, and the
      numbers already reported do not change), flagged is_post_deleted.
    - post_created_at is the post's created_at as in fct_x_posts (its oldest version
      received).

    A plain table rebuilt by every build that takes in X data (see macros/incremental.sql).
-#}

with

posts as (

    select * from {{ ref('int_x__posts_classified') }}

),

accounts as (

    select * from {{ ref('int_x__accounts') }}

),

versions as (

    select * from {{ ref('int_x__post_versions') }}

),

observations as (

    select * from {{ ref('int_x__post_observations') }}

),

own_posts as (

    select
        posts.post_id,
        posts.author_id as account_id,
        accounts.account_username,
        posts.post_type,
        posts.created_at as post_created_at,
        posts.is_deleted as is_post_deleted

    from posts
    inner join accounts
        on posts.author_id = accounts.account_id
    where posts.is_own and posts.post_type != 'retweet'

),

linked_urls as (

    select distinct
        versions.root_post_id as post_id,
        {{ unnest_list(
            'coalesce('
            ~ json_string_list('observations.payload', '$.entities.urls[*].expanded_url')
            ~ ', ' ~ empty_list() ~ ')'
        ) }} as linked_url

    from observations
    inner join versions
        on observations.post_id = versions.version_id
    where versions.root_post_id in (select own_posts.post_id from own_posts)

),

support_links as (

    select
        post_id,
        {{ normalized_url_path(url_path('linked_url')) }} as linked_path,
        min(linked_url) as linked_url

    from linked_urls
    where {{ url_host('linked_url') }} in ({{ lowercase_string_list(var('support_site_hosts')) }})
    group by all

),

final as (

    select
        own_posts.post_id,
        own_posts.account_id,
        own_posts.account_username,
        own_posts.post_type,
        own_posts.post_created_at,
        own_posts.is_post_deleted,
        support_links.linked_path,
        support_links.linked_url

    from own_posts
    inner join support_links
        on own_posts.post_id = support_links.post_id

)

select * from final
