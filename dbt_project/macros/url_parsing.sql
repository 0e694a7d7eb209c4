{#-
    Small URL helpers used by the support-site models. All of them return null rather
    than an empty string when there is nothing to extract.
-#}

{#- host of an absolute URL, lowercased, without user info, port or trailing dot -#}
{% macro url_host(url) -%}
    nullif(
        rtrim(
            regexp_replace(
                regexp_extract(lower({{ url }}), '^[a-z][a-z0-9+.-]*://(?:[^/?#@]*@)?([^/?#:]+)', 1),
                '\.+$',
                ''
            ),
            '.'
        ),
        ''
    )
{%- endmacro %}

{#- a host with one leading "www." or "m." removed (www.facebook.com -> facebook.com) -#}
{% macro strip_host_prefix(host) -%}
    regexp_replace({{ host }}, '^(www|m)\.(.+\..+)$', '\2')
{%- endmacro %}

{#- value of a query-string parameter of a request target or URL, url-decoded and trimmed -#}
{% macro url_query_param(url, name) -%}
    nullif(
        trim(
            url_decode(
                replace(regexp_extract({{ url }}, '[?&]{{ name }}=([^&#]*)', 1), '+', ' ')
            )
        ),
        ''
    )
{%- endmacro %}
