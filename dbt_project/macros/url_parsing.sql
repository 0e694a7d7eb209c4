{#-
    URL helper used by the support-site models (the referrer host and the utm parameters
    are split at extraction, see extract/log_format.py).
-#}

{#- a host with one leading "www." or "m." removed (www.facebook.com -> facebook.com) -#}
{% macro strip_host_prefix(host) -%}
    regexp_replace({{ host }}, '^(www|m)[.](.+[.].+)$', {{ regex_group_ref(2) }})
{%- endmacro %}

{#-
    A URL path as per-post link attribution compares them (int_x__post_support_links,
    fct_x_post_attributed_sessions): no query string or fragment, no trailing slash
    (`/articles/sso/` is `/articles/sso`), `/` when empty. Case and percent-encoding are
    kept (paths are case-sensitive).
-#}
{% macro normalized_url_path(path) -%}
    coalesce(
        nullif(trim(trailing '/' from regexp_replace(coalesce({{ path }}, ''), '[?#].*$', '')), ''),
        '/'
    )
{%- endmacro %}

{#- the lowercased host of an http(s) URL, without user info or port; null for other URLs -#}
{% macro url_host(url) -%}
    nullif(lower(regexp_extract({{ url }}, '^(?i:https?)://(?:[^/?#@]*@)?([^/?#:]+)', 1)), '')
{%- endmacro %}

{#- the path of an http(s) URL, with its query string and fragment (empty when it has none) -#}
{% macro url_path(url) -%}
    regexp_extract({{ url }}, '^(?i:https?)://[^/?#]*([^#]*)', 1)
{%- endmacro %}
