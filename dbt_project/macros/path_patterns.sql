{#-
    Path patterns (var support_site_answer_paths, setting SUPPORT_SITE_ANSWER_PATHS) in SQL.

    A pattern is glob-like and matches a whole path: `*` stands for any run of characters
    (`/` included: `/kb/*` matches `/kb/billing/refunds`), `?` for exactly one; anything else
    is itself (`%`, `_` and `\` included: they are escaped, so `/kb/100%_sure` matches only
    that path). A pattern with a trailing slash is read without it, as the paths are compared
    without query string, fragment or trailing slash (normalized_url_path).
-#}

{#- a pattern as the literal of a `like ... escape '\'` -#}
{% macro like_pattern(pattern) -%}
    {%- set pattern = pattern | string | trim -%}
    {%- if pattern | length > 1 and pattern.endswith('/') -%}{%- set pattern = pattern.rstrip('/') or '/' -%}{%- endif -%}
    {%- set escaped = pattern
        | replace('\\', '\\\\')
        | replace('%', '\\%')
        | replace('_', '\\_')
        | replace('*', '%')
        | replace('?', '_') -%}
    {{ sql_string(escaped) }}
{%- endmacro %}

{#- whether the path `path` (an SQL expression; normalised here) matches any of `patterns`
    (a list, or a comma-separated string); false when there are none -#}
{% macro path_matches_any(path, patterns) -%}
    {%- if patterns is string -%}{%- set patterns = patterns.split(',') | map('trim') | reject('equalto', '') | list -%}{%- endif -%}
    {%- if patterns | length == 0 -%}
        false
    {%- else -%}
        (
            {%- for pattern in patterns %}
            {{ normalized_url_path(path) }} like {{ like_pattern(pattern) }} escape {{ sql_string('\\') }}
            {{- ' or' if not loop.last }}
            {%- endfor %}
        )
    {%- endif -%}
{%- endmacro %}
