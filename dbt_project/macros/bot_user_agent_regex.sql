{#-
    Case-insensitive regular expression for user agents that are not people: crawlers,
    link-preview fetchers, monitoring and command-line HTTP clients. Deliberately simple
    (a later issue replaces it with a maintained list). A missing user agent also counts
    as a bot: every browser sends one.
-#}
{% macro bot_user_agent_regex() -%}
    '(bot|crawl|spider|slurp|facebookexternalhit|twitterbot|linkedinbot|bingpreview|embedly|preview|headless|lighthouse|pingdom|uptime|monitor|curl|wget|python-requests|python-urllib|go-http-client|java/|okhttp|libwww|httpclient|scrapy|feedfetcher)'
{%- endmacro %}
