{#-
    The reply funnel: one row per company reply to a customer that carries a support-site
    link, with what came of it. Rules:

    - The replies: own posts of type reply to a customer (int_x__posts_classified
      is_reply_to_customer: a company account replying to someone who is not one of the
      company's accounts; a reply in the company's own thread has no customer) with at
      least one link to the support site (int_x__post_support_links: the links of any
      version, on a host of var('support_site_hosts'); retweets are not replies). A deleted
      reply keeps its row, flagged, as it keeps its credits.
    - linked_paths: its linked paths (normalised), comma-separated in order.
    - The mention it replies to: its replied_to post (edit root) when that post is a mention
      (int_x__mentions_responses), else null (a reply to a customer's post that does not tag
      the company); is_mention_answer when the reply is that mention's answer (its first
      company reply, within the answer window).
    - attributed_sessions: the support-site sessions credited to the reply
      (fct_x_post_attributed_sessions: t.co clicks landing on a linked path within 24 hours,
      each session credited to one post only).
    - answer_page_sessions: of those, the sessions reaching an answer page: any of their page
      views (int_support_site__requests_classified, the session's visitor - site, visitor
      id, user agent - between its first and last page view) on a path matching
      var('support_site_answer_paths') (setting SUPPORT_SITE_ANSWER_PATHS; macros/
      path_patterns.sql), the landing page included.
    - has_customer_returned: the customer (the author of the post replied to) posted again
      in the same conversation, needing an answer (fct_x_mentions' needs_answer: "thanks,
      that worked" is no return), after the reply and no later than the answer window after
      it (var x_answer_window_days, as fct_x_conversations' re-contact). True as soon as such
      a post exists; false when none came and the window has closed; null (undecided, never
      false) while the window is still open at the end of the X data (x_data_until()).

    The visits of a reply posted less than 24 hours before the end of the support-site data
    may still grow (the attribution window is open). A plain table rebuilt by every build, as
    fct_x_post_attributed_sessions, which it reads.
-#}

with

posts as (

    select * from {{ ref('int_x__posts_classified') }}

),

links as (

    select * from {{ ref('int_x__post_support_links') }}

),

mentions as (

    select * from {{ ref('int_x__mentions_responses') }}

),

attributed_sessions as (

    select * from {{ ref('fct_x_post_attributed_sessions') }}

),

sessions as (

    select * from {{ ref('int_support_site__sessions') }}

),

requests as (

    select * from {{ ref('int_support_site__requests_classified') }}

),

linked_replies as (

    select
        post_id,
        any_value(account_id) as account_id,
        any_value(account_username) as account_username,
        {{ string_agg_ordered('linked_path', "','", 'linked_path') }} as linked_paths,
        count(*) as linked_path_count

    from links
    where post_type = 'reply'
    group by post_id

),

replies as (

    select
        posts.post_id as reply_id,
        linked_replies.account_id,
        linked_replies.account_username,
        posts.created_at,
        posts.created_date,
        posts.conversation_id,
        posts.replied_to_post_id,
        coalesce(replied_to.author_id, posts.in_reply_to_user_id) as customer_id,
        posts.is_deleted,
        linked_replies.linked_paths,
        linked_replies.linked_path_count

    from posts
    inner join linked_replies
        on posts.post_id = linked_replies.post_id
    left join posts as replied_to
        on posts.replied_to_post_id = replied_to.post_id
    where posts.is_reply_to_customer

),

reply_sessions as (

    select
        attributed_sessions.post_id as reply_id,
        attributed_sessions.session_id,
        sessions.site,
        sessions.visitor_id,
        sessions.user_agent,
        sessions.session_started_at,
        sessions.session_ended_at

    from attributed_sessions
    inner join sessions
        on attributed_sessions.session_id = sessions.session_id
    where attributed_sessions.post_id in (select replies.reply_id from replies)

),

answer_page_sessions as (

    select distinct reply_sessions.session_id

    from reply_sessions
    inner join requests
        on
            reply_sessions.site = requests.site
            and reply_sessions.visitor_id = requests.visitor_id
            and reply_sessions.user_agent = requests.user_agent
            and reply_sessions.session_started_at <= requests.requested_at
            and reply_sessions.session_ended_at >= requests.requested_at
    where
        requests.is_page_view
        and {{ path_matches_any('requests.request_path', var('support_site_answer_paths')) }}

),

visits as (

    select
        reply_sessions.reply_id,
        count(*) as attributed_sessions,
        count(answer_page_sessions.session_id) as answer_page_sessions

    from reply_sessions
    left join answer_page_sessions
        on reply_sessions.session_id = answer_page_sessions.session_id
    group by reply_sessions.reply_id

),

returns as (

    select
        replies.reply_id,
        min(mentions.created_at) as customer_returned_at

    from replies
    inner join mentions
        on
            replies.conversation_id = mentions.conversation_id
            and replies.customer_id = mentions.author_id
            and replies.created_at < mentions.created_at
            and {{ answer_window_end('replies.created_at') }} >= mentions.created_at
    where mentions.needs_answer
    group by replies.reply_id

),

final as (

    select
        replies.reply_id,
        replies.account_id,
        replies.account_username,
        replies.created_at,
        replies.created_date,
        replies.conversation_id,
        replies.customer_id,
        mentions.mention_id,
        coalesce(mentions.first_response_id = replies.reply_id, false) as is_mention_answer,
        replies.linked_paths,
        replies.linked_path_count,
        replies.is_deleted,
        coalesce(visits.attributed_sessions, 0) as attributed_sessions,
        coalesce(visits.answer_page_sessions, 0) as answer_page_sessions,
        coalesce(visits.answer_page_sessions, 0) > 0 as has_answer_page_visit,
        returns.customer_returned_at,
        case
            when returns.customer_returned_at is not null then true
            when {{ answer_window_end('replies.created_at') }} > {{ x_data_until() }} then null
            else false
        end as has_customer_returned

    from replies
    left join mentions
        on replies.replied_to_post_id = mentions.mention_id
    left join visits
        on replies.reply_id = visits.reply_id
    left join returns
        on replies.reply_id = returns.reply_id

)

select * from final
