{#-
    The columns of one X post object (`payload`, JSON), shared by every staging model that
    receives post objects (timelines: stg_x__posts; metrics refresh: stg_x__post_snapshots),
    so that both parse posts identically.

    Accepts both API vocabularies: the Post one (referenced_posts, edit_history_post_ids)
    and the Tweet one (referenced_tweets, edit_history_tweet_ids); whichever is present as
    an array is used. `post_id_column` is the loader's id column, the payload's `id` is the
    fallback.
-#}
{% macro x_post_payload_columns(payload='payload', post_id_column='post_id') -%}
    {%- set references -%}
        case
            when json_type({{ payload }}, '$.referenced_posts') = 'ARRAY'
                then json_extract({{ payload }}, '$.referenced_posts')
            else json_extract({{ payload }}, '$.referenced_tweets')
        end
    {%- endset -%}
    {%- set edit_history -%}
        case
            when json_type({{ payload }}, '$.edit_history_post_ids') = 'ARRAY'
                then json_extract({{ payload }}, '$.edit_history_post_ids')
            else json_extract({{ payload }}, '$.edit_history_tweet_ids')
        end
    {%- endset -%}
    coalesce({{ post_id_column }}, json_extract_string({{ payload }}, '$.id')) as post_id,
        json_extract_string({{ payload }}, '$.author_id') as author_id,
        try_strptime(
            json_extract_string({{ payload }}, '$.created_at'),
            ['%Y-%m-%dT%H:%M:%S.%gZ', '%Y-%m-%dT%H:%M:%SZ']
        ) as created_at,
        json_extract_string({{ payload }}, '$.text') as post_text,
        json_extract_string({{ payload }}, '$.lang') as lang,
        json_extract_string({{ payload }}, '$.conversation_id') as conversation_id,
        json_extract_string({{ payload }}, '$.in_reply_to_user_id') as in_reply_to_user_id,
        {%- for reference_type, column in [
            ('replied_to', 'replied_to_post_id'),
            ('quoted', 'quoted_post_id'),
            ('retweeted', 'retweeted_post_id'),
        ] %}
        json_extract_string({{ references }}, '$[*].id')[
            list_position(json_extract_string({{ references }}, '$[*].type'), '{{ reference_type }}')
        ] as {{ column }},
        {%- endfor %}
        coalesce(
            json_extract_string({{ payload }}, '$.entities.mentions[*].id'), []
        ) as mentioned_user_ids,
        -- usernames are case-insensitive on X; the mention objects' keys are lowercase already
        coalesce(
            json_extract_string(
                lower(cast(json_extract({{ payload }}, '$.entities.mentions') as varchar)),
                '$[*].username'
            ),
            []
        ) as mentioned_usernames,
        coalesce(json_extract_string({{ edit_history }}, '$[*]'), []) as edit_history_post_ids,
        coalesce(len(json_extract_string({{ edit_history }}, '$[*]')), 0) as edit_history_count,
        {%- for metric in ['retweet', 'reply', 'like', 'quote', 'bookmark', 'impression'] %}
        cast(
            json_extract({{ payload }}, '$.public_metrics.{{ metric }}_count') as bigint
        ) as {{ metric }}_count,
        {%- endfor %}
        {{ payload }} as payload
{%- endmacro %}
