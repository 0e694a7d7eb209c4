{#-
    Which mentions need an answer (int_x__mentions_responses), as the first rule that
    matches says, read on the text without its links and @handles:

      company_account  the author is one of the company's other accounts (X_COMPANY_USERNAMES)
      bot              the author is an automated account (X_BOT_USERNAMES)
      question         a question mark (quintly's rule: a question always needs an answer)
      thanks           thanks or praise (var x_thanks_pattern) with no sign of a problem
                       (var x_problem_pattern: "thanks but it's still down" needs one)
      not_a_question   anything else, when X_NEEDS_ANSWER_QUESTIONS_ONLY (quintly's count)
      request          anything else: a complaint or a request without a question mark

    A mention needs an answer for `question` and `request`.
-#}
{% macro needs_answer_reason(text, author_username) -%}
    {%- set plain -%}
        {{ regex_replace_all(
            "coalesce(" ~ text ~ ", '')", regex_literal('(https?://\\S+)|(@\\w+)'), "' '"
        ) }}
    {%- endset -%}
    case
        when lower({{ author_username }}) in ({{ lowercase_string_list(var('x_company_usernames')) }})
            then 'company_account'
        when lower({{ author_username }}) in ({{ lowercase_string_list(var('x_bot_usernames')) }})
            then 'bot'
        when {{ regex_matches(plain, "'[?¿？]'") }} then 'question'
        when
            {{ regex_matches(plain, regex_literal(var('x_thanks_pattern'))) }}
            and not {{ regex_matches(plain, regex_literal(var('x_problem_pattern'))) }}
            then 'thanks'
        {% if var('x_needs_answer_questions_only') -%}
        else 'not_a_question'
        {%- else -%}
        else 'request'
        {%- endif %}
    end
{%- endmacro %}

{#- when the answer window (var x_answer_window_days) of something posted at `ts` closes -#}
{% macro answer_window_end(ts) -%}
    {{ ts }} + {{ interval_days(var('x_answer_window_days')) }}
{%- endmacro %}

{#- how far the X data reaches (the latest X batch's interval end): a window still open
    then is undecided (a mention waiting, a one-touch case not yet settled) -#}
{% macro x_data_until() -%}
    (select max(interval_end) from {{ ref('stg_pipeline__batches') }} where source = 'x')
{%- endmacro %}

{#- the mention counts every daily and period mart adds up, defined once: columns
    `<prefix>mentions`, `<prefix>mentions_answered`, ... over rows of fct_x_mentions
    (qualified by `rel`, e.g. 'mentions.'), grouped by the caller -#}
{% macro mention_counts(prefix='', rel='') -%}
    count(*) as {{ prefix }}mentions,
    count(*) filter (where {{ rel }}is_answered) as {{ prefix }}mentions_answered,
    count(*) filter (where {{ rel }}answer_status = 'waiting') as {{ prefix }}mentions_waiting,
    count(*) filter (where {{ rel }}needs_answer) as {{ prefix }}mentions_needing_answer,
    count(*) filter (
        where {{ rel }}needs_answer and {{ rel }}is_answered
    ) as {{ prefix }}mentions_needing_answer_answered,
    count(*) filter (
        where {{ rel }}needs_answer and {{ rel }}answer_status = 'waiting'
    ) as {{ prefix }}mentions_needing_answer_waiting,
    count(*) filter (
        where {{ rel }}needs_answer and {{ rel }}is_answered_within_target
    ) as {{ prefix }}mentions_needing_answer_within_target,
    count(*) filter (where {{ rel }}is_target_breached) as {{ prefix }}mentions_target_breached
{%- endmacro %}
