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
            when {{ json_is_array(json_fragment(payload, '$.referenced_posts')) }}
                then {{ json_fragment(payload, '$.referenced_posts') }}
            else {{ json_fragment(payload, '$.referenced_tweets') }}
        end
    {%- endset -%}
    {%- set edit_history -%}
        case
            when {{ json_is_array(json_fragment(payload, '$.edit_history_post_ids')) }}
                then {{ json_fragment(payload, '$.edit_history_post_ids') }}
            else {{ json_fragment(payload, '$.edit_history_tweet_ids') }}
        end
    {%- endset -%}
    coalesce({{ post_id_column }}, {{ json_text(payload, '$.id') }}) as post_id,
        {{ json_text(payload, '$.author_id') }} as author_id,
        {{ parse_x_timestamp(json_text(payload, '$.created_at')) }} as created_at,
        {{ json_text(payload, '$.text') }} as post_text,
        {{ json_text(payload, '$.lang') }} as lang,
        {{ json_text(payload, '$.conversation_id') }} as conversation_id,
        {{ json_text(payload, '$.in_reply_to_user_id') }} as in_reply_to_user_id,
        {%- for reference_type, column in [
            ('replied_to', 'replied_to_post_id'),
            ('quoted', 'quoted_post_id'),
            ('retweeted', 'retweeted_post_id'),
        ] %}
        {{ list_element(
            json_string_list(references, '$[*].id'),
            list_position(json_string_list(references, '$[*].type'), "'" ~ reference_type ~ "'")
        ) }} as {{ column }},
        {%- endfor %}
        coalesce(
            {{ json_string_list(payload, '$.entities.mentions[*].id') }}, {{ empty_list() }}
        ) as mentioned_user_ids,
        -- usernames are case-insensitive on X; the mention objects' keys are lowercase already
        coalesce(
            {{ json_string_list(
                'lower(cast(' ~ json_fragment(payload, '$.entities.mentions') ~ ' as string))',
                '$[*].username'
            ) }},
            {{ empty_list() }}
        ) as mentioned_usernames,
        coalesce({{ json_string_list(edit_history, '$[*]') }}, {{ empty_list() }})
            as edit_history_post_ids,
        coalesce({{ list_length(json_string_list(edit_history, '$[*]')) }}, 0)
            as edit_history_count,
        {%- for metric in ['retweet', 'reply', 'like', 'quote', 'bookmark', 'impression'] %}
        cast(
            {{ json_fragment(payload, '$.public_metrics.' ~ metric ~ '_count') }} as bigint
        ) as {{ metric }}_count,
        {%- endfor %}
        {{ payload }} as payload
{%- endmacro %}
