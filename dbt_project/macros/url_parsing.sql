{#-
    URL helper used by the support-site models (the referrer host and the utm parameters
    are split at extraction, see extract/log_format.py).
-#}

{#- a host with one leading "www." or "m." removed (www.facebook.com -> facebook.com) -#}
{% macro strip_host_prefix(host) -%}
    regexp_replace({{ host }}, '^(www|m)\.(.+\..+)$', '\2')
{%- endmacro %}
