{#-
    Per-post link attribution: one row per support-site session credited to an own X post,
    without UTM tags. Rules:

    - The session is a link click from X: its first page view's referrer host is t.co,
      X's link shortener, through which every link in a post is opened. (x.com and
      twitter.com referrers are X-referred in the daily marts, but are navigation on X,
      not a click on a post's link, and are not credited.)
    - A post can be credited with it when the post links to the session's landing path
      (int_x__post_support_links: own posts but retweets, the links of any version, on a
      host of var('support_site_hosts'); both paths without query string, fragment or
      trailing slash) and the session started within 24 hours of the post:
      post_created_at <= session_started_at < post_created_at + 24 hours.
    - Of those posts, the most recent one is credited (on a tie, the highest post id),
      so each session is credited once, to one post.
    - Not credited: sessions from any other referrer, landing on a path no own post linked
      in the 24 hours before, or started before the post or 24 hours or more after it.
    Sessions with UTM tags are credited like the others.

    A plain table: a session's credit depends on X posts of any age (an edit can change a
    link), which no day window of the support-site data bounds.
-#}

with

sessions as (

    select * from {{ ref('int_support_site__sessions') }}

),

links as (

    select * from {{ ref('int_x__post_support_links') }}

),

link_clicks as (

    select * from sessions
    where lower(referrer_host) = 't.co'

),

candidates as (

    select
        link_clicks.session_id,
        link_clicks.session_date,
        link_clicks.session_started_at,
        link_clicks.landing_path,
        link_clicks.page_views,
        link_clicks.session_duration_seconds,
        links.post_id,
        links.account_id,
        links.account_username,
        links.post_type,
        links.is_post_deleted,
        links.linked_path,
        links.post_created_at,
        row_number() over (
            partition by link_clicks.session_id
            order by
                links.post_created_at desc,
                {{ numeric_id('links.post_id') }} desc,
                links.post_id desc
        ) as recency_rank

    from link_clicks
    inner join links
        on
            {{ normalized_url_path('link_clicks.landing_path') }} = links.linked_path
            and link_clicks.session_started_at >= links.post_created_at
            and link_clicks.session_started_at < links.post_created_at + interval 24 hour

),

final as (

    select
        session_id,
        session_date,
        session_started_at,
        landing_path,
        page_views,
        session_duration_seconds,
        post_id,
        account_id,
        account_username,
        post_type,
        is_post_deleted,
        linked_path,
        post_created_at,
        {{ round_double(
            'cast(' ~ date_diff('second', 'post_created_at', 'session_started_at') ~ ' as double) / 60', 1
        ) }}
            as minutes_after_post

    from candidates
    where recency_rank = 1

)

select * from final
