{#-
    One row per conversation with a customer: an X conversation (conversation_id, the id of
    the post that started the thread) holding at least one mention. Its customer posts are
    its mentions (fct_x_mentions' rows); its company replies are the company accounts'
    replies in it from its first customer post on.

    is_one_touch: one company reply and no customer post needing an answer after it within
    the answer window (var x_answer_window_days; a "thanks, that worked" closes, it does not
    reopen); null while that window is still open at the end of the X data with no such
    post yet (undecided). has_recontact: a customer posted again, needing an answer, after a
    company reply.

    A plain table rebuilt by every build that takes in X data, as the other X models.
-#}

with

mentions as (

    select * from {{ ref('int_x__mentions_responses') }}

),

posts as (

    select * from {{ ref('int_x__posts_classified') }}

),

customer_posts as (

    select
        conversation_id,
        mention_id,
        author_id,
        mentioned_account_username,
        needs_answer,
        created_at,
        row_number() over (
            partition by conversation_id order by created_at asc nulls last, mention_id asc
        ) as post_rank

    from mentions
    where conversation_id is not null

),

conversations as (

    select
        conversation_id,
        count(*) as customer_posts,
        count(distinct author_id) as customers,
        min(created_at) as first_customer_post_at

    from customer_posts
    group by conversation_id

),

first_customer_posts as (

    select * from customer_posts
    where post_rank = 1

),

company_replies as (

    select
        posts.conversation_id,
        posts.post_id,
        posts.created_at

    from posts
    inner join conversations
        on posts.conversation_id = conversations.conversation_id
    where
        posts.is_own
        and posts.post_type = 'reply'
        and posts.created_at >= conversations.first_customer_post_at

),

replies_per_conversation as (

    select
        conversation_id,
        count(*) as company_replies,
        min(created_at) as first_company_reply_at,
        max(created_at) as last_company_reply_at

    from company_replies
    group by conversation_id

),

later_customer_posts as (

    select
        customer_posts.conversation_id,
        min(customer_posts.created_at) as first_post_after_reply_at

    from customer_posts
    inner join replies_per_conversation
        on customer_posts.conversation_id = replies_per_conversation.conversation_id
    where
        customer_posts.created_at > replies_per_conversation.first_company_reply_at
        and customer_posts.needs_answer
    group by customer_posts.conversation_id

),

final as (

    select
        conversations.conversation_id,
        first_customer_posts.mention_id as first_customer_post_id,
        first_customer_posts.author_id as first_customer_id,
        first_customer_posts.mentioned_account_username as account_username,
        conversations.first_customer_post_at,
        cast(conversations.first_customer_post_at as date) as started_date,
        conversations.customer_posts,
        conversations.customers,
        coalesce(replies_per_conversation.company_replies, 0) as company_replies,
        replies_per_conversation.first_company_reply_at,
        replies_per_conversation.last_company_reply_at,
        case
            when coalesce(replies_per_conversation.company_replies, 0) != 1 then false
            when later_customer_posts.first_post_after_reply_at
                <= {{ answer_window_end('replies_per_conversation.first_company_reply_at') }}
                then false
            when {{ answer_window_end('replies_per_conversation.first_company_reply_at') }}
                > {{ x_data_until() }}
                then null
            else true
        end as is_one_touch,
        later_customer_posts.first_post_after_reply_at is not null as has_recontact

    from conversations
    inner join first_customer_posts
        on conversations.conversation_id = first_customer_posts.conversation_id
    left join replies_per_conversation
        on conversations.conversation_id = replies_per_conversation.conversation_id
    left join later_customer_posts
        on conversations.conversation_id = later_customer_posts.conversation_id

)

select * from final
