{#-
    Incremental builds (see README.md, "Incremental builds").

    `engagement build` writes, before dbt runs, the days whose raw data changed since the
    last published build into `_engagement.changed_days` (source, date_day): the days of
    every batch loaded, re-loaded or removed since then (all days on a full refresh).
    Incremental models recompute what depends on those days and replace it.
-#}

{#-
    The changed days of a source, as a subquery after `in`. Use it in
    `incremental_predicates` (config is rendered when dbt parses, before the days exist).
-#}
{% macro changed_days(source) -%}
    (select date_day from _engagement.changed_days where source = '{{ source }}')
{%- endmacro %}

{#-
    A filter keeping the rows whose `column` (a date or timestamp) falls on one of the days
    that `days_sql` selects (one date column), read when the model runs. The days are
    written out as literals with their range, so DuckDB skips the row groups of other days
    instead of reading the whole history.
-#}
{% macro on_days(column, days_sql) -%}
    {%- set days = query_values(
        "select distinct strftime(date_day, '%Y-%m-%d') from (" ~ days_sql ~ ")"
        ~ " as days (date_day) where date_day is not null order by 1"
    ) -%}
    {%- if days -%}
        {{ column }} >= date '{{ days[0] }}'
        and {{ column }} < date '{{ days[-1] }}' + interval 1 day
        and cast({{ column }} as date) in (
            {%- for day in days %}date '{{ day }}'{{ ", " if not loop.last }}{% endfor -%}
        )
    {%- else -%}
        false
    {%- endif -%}
{%- endmacro %}

{#- The first column of a query's rows, read when the model runs (none while parsing). -#}
{% macro query_values(sql) -%}
    {{ return(run_query(sql).columns[0].values() | list if execute else []) }}
{%- endmacro %}

{#- The changed batches of a source, as a subquery after `in`. -#}
{% macro changed_batches(source) -%}
    (select batch_id from _engagement.changed_loads where source = '{{ source }}')
{%- endmacro %}

{#- A filter keeping the rows of the changed batches of a source, written out as literals. -#}
{% macro in_changed_batches(column, source) -%}
    {%- set batches = query_values(
        "select distinct batch_id from " ~ changed_batches(source) ~ " as b (batch_id) order by 1"
    ) -%}
    {%- if batches -%}
        {{ column }} in ({% for batch in batches %}'{{ batch }}'{{ ", " if not loop.last }}{% endfor %})
    {%- else -%}
        false
    {%- endif -%}
{%- endmacro %}

{#- on_days() for the changed days of a source. -#}
{% macro on_changed_days(column, source) -%}
    {{ on_days(column, changed_days(source)) }}
{%- endmacro %}

{#-
    Custom incremental strategy `replace_where`: delete the target's rows matching every
    one of the model's `incremental_predicates`, then insert the new rows, in the model's
    transaction. Unlike delete+insert on a unique key, rows that no longer exist (a
    session merged into another, a day whose lines were re-loaded) are removed too.
-#}
{% macro get_incremental_replace_where_sql(arg_dict) -%}
    {%- set predicates = arg_dict["incremental_predicates"] -%}
    {%- if not predicates -%}
        {{ exceptions.raise_compiler_error("replace_where needs incremental_predicates") }}
    {%- endif -%}
    {%- set columns = get_quoted_csv(arg_dict["dest_columns"] | map(attribute="name")) -%}
    delete from {{ arg_dict["target_relation"] }}
    where {{ predicates | join("\n    and ") }};

    insert into {{ arg_dict["target_relation"] }} ({{ columns }})
    select {{ columns }} from {{ arg_dict["temp_relation"] }}
{%- endmacro %}

{#- Creates the state tables when dbt runs without `engagement build` (then: full build). -#}
{% macro create_build_state() -%}
    create schema if not exists _engagement;
    create table if not exists _engagement.changed_loads (source varchar, batch_id varchar);
    create table if not exists _engagement.changed_days (source varchar, date_day date);
    create table if not exists _engagement.changed_keys (kind varchar, key varchar);
    create table if not exists _engagement.unpublished_keys (mart varchar, key varchar);
    create table if not exists _engagement.mart_keys (mart varchar primary key, key_column varchar);
{%- endmacro %}

{#-
    Sessions that the changed support-site days can touch: those within the session
    timeout of a changed day (see int_support_site__sessions). Unqualified columns: used
    in the delete of `replace_where` too.
-#}
{% macro session_near_changed_days() -%}
    exists (
        select 1 from _engagement.changed_days as changed
        where
            changed.source = 'support_site'
            and session_ended_at
            >= changed.date_day - to_minutes({{ var('session_timeout_minutes') }})
            and session_started_at
            <= changed.date_day + interval 1 day + to_minutes({{ var('session_timeout_minutes') }})
    )
{%- endmacro %}

{#- The start days of the model's sessions near the changed days, as a query (for hooks). -#}
{% macro session_days_near_changed_days() -%}
    select session_date from {{ this }} where {{ session_near_changed_days() }}
{%- endmacro %}

{#-
    The days the replaced sessions (session_near_changed_days) span, as a literal range on
    requested_date, read when int_support_site__sessions runs incrementally.
-#}
{% macro replaced_session_days() -%}
    {%- set bounds = run_query(
        "select strftime(cast(min(session_started_at) as date), '%Y-%m-%d'),"
        ~ " strftime(cast(max(session_ended_at) as date), '%Y-%m-%d')"
        ~ " from " ~ this ~ " where " ~ session_near_changed_days()
    ) if execute else none -%}
    {%- if bounds and bounds.rows[0][0] -%}
        requests.requested_date between date '{{ bounds.rows[0][0] }}' and date '{{ bounds.rows[0][1] }}'
    {%- else -%}
        false
    {%- endif -%}
{%- endmacro %}

{#-
    The days int_support_site__changed_days lists, as a subquery. Written out, not ref()'d:
    incremental_predicates are rendered when dbt parses, where ref() does not resolve. The
    models that use it also ref() the model, which orders the build.
-#}
{% macro support_site_days_to_recompute() -%}
    (select date_day from intermediate.int_support_site__changed_days)
{%- endmacro %}

{#-
    X. A reply, an edit or a deletion can change what is known about a post of any age, so
    the X models are keyed on ids rather than days. `_engagement.changed_keys` (kind, key)
    collects the keys the models after have to recompute: each incremental X model's hooks
    record the keys of the rows it is about to replace (pre_hook, from its previous rows)
    and of the rows it wrote (post_hook), and the models after it recompute those keys.
    The keys are kept until a build is green (`engagement build` then empties the table),
    so a build that dies half-way leaves them for the next one. Kinds:
      x_version  post ids whose edit-chain root may have changed (int_x__post_versions)
      x_post     edit roots whose posts, mentions and metrics are recomputed
      x_user     users whose latest username may have changed (int_x__users)
      x_day      days whose posts or mentions changed (the daily aggregates)
      x_accounts the company accounts as the last green build saw them, one row
-#}

{#- A hook of int_x__accounts: remember the accounts of the last green build, once. -#}
{% macro record_accounts_snapshot() -%}
    {%- if not flags.FULL_REFRESH and load_relation(this) is not none -%}
        insert into _engagement.changed_keys
        select 'x_accounts', {{ x_accounts_signature(this) }}
        where not exists (select 1 from _engagement.changed_keys where kind = 'x_accounts')
    {%- endif -%}
{%- endmacro %}

{#- The company accounts (ids and usernames) in one string. -#}
{% macro x_accounts_signature(relation) -%}
    (
        select coalesce(string_agg(account_id || ':' || account_username, ',' order by account_id), '')
        from {{ relation }}
    )
{%- endmacro %}

{#- True when the company accounts differ from those of the last green build. -#}
{% macro x_accounts_changed() -%}
    coalesce(
        (select any_value(key) from _engagement.changed_keys where kind = 'x_accounts')
        != {{ x_accounts_signature('intermediate.int_x__accounts') }},
        false
    )
{%- endmacro %}

{#- The recorded keys of a kind, as a subquery after `in`. -#}
{% macro changed_keys(kind) -%}
    (select key from _engagement.changed_keys where kind = '{{ kind }}')
{%- endmacro %}

{#- A hook: record the keys that `keys_sql` (one column) selects, unless the build is a full
    one (everything is recomputed) or the model is new. -#}
{% macro record_changed_keys(kind, keys_sql) -%}
    {%- if not flags.FULL_REFRESH and load_relation(this) is not none -%}
        insert into _engagement.changed_keys
        select distinct '{{ kind }}', cast(key as varchar) from ({{ keys_sql }}) as keys (key)
        where key is not null
        except
        select kind, key from _engagement.changed_keys
    {%- endif -%}
{%- endmacro %}

{#- A column (or expression) of the rows of the changed X batches in `relation`. -#}
{% macro x_batch_keys(relation, expression) -%}
    select {{ expression }} from {{ relation }} where batch_id in {{ changed_batches('x') }}
{%- endmacro %}

{#- The post ids observations name: their own and those of their edit histories. -#}
{% macro x_version_ids(relation) -%}
    {{ x_batch_keys(relation, "unnest(list_prepend(post_id, coalesce(edit_history_post_ids, [])))") }}
{%- endmacro %}

{#- The posts of `relation` whose references or conversation name a changed version or post. -#}
{% macro posts_referencing_changed_posts(relation) -%}
    select post_id from (
        select
            post_id,
            unnest([conversation_id, replied_to_post_id, quoted_post_id, retweeted_post_id])
                as referenced_id
        from {{ relation }}
    )
    where referenced_id in (
        select key from _engagement.changed_keys where kind in ('x_post', 'x_version')
    )
{%- endmacro %}

{#- The posts of `relation` whose author's username is no longer the one they show. -#}
{% macro posts_of_renamed_authors(relation) -%}
    select posts.post_id
    from {{ relation }} as posts
    left join {{ ref('int_x__users') }} as users
        on posts.author_id = users.user_id
    where
        posts.author_id in {{ changed_keys('x_user') }}
        and posts.author_username is distinct from users.username
{%- endmacro %}

{#-
    The days the daily engagement aggregates recompute: those whose support-site traffic
    can have changed, those of the changed X posts and mentions (kind x_day, before and
    after), the days of every batch loaded, re-loaded, removed or refused since the last
    green build (their coverage, agg_daily_source_coverage, can have changed: an X day
    loaded with no post is no longer missing) and, when the company accounts changed,
    every day. Days that join or leave the date spine are added by the models.
-#}
{% macro engagement_days_to_recompute() -%}
    (
        select date_day from intermediate.int_support_site__changed_days
        union all
        select date_day from _engagement.changed_days
        union all
        select cast(key as date) from _engagement.changed_keys where kind = 'x_day'
        union all
        select date_day from intermediate.int_date_spine where {{ x_accounts_changed() }}
    )
{%- endmacro %}

{#-
    The rows the daily engagement aggregates replace: those of the days to recompute, and
    of days that left the date spine.
-#}
{% macro engagement_days_replaced() -%}
    (
        date_day in {{ engagement_days_to_recompute() }}
        or date_day not in (select date_day from intermediate.int_date_spine)
    )
{%- endmacro %}

{#-
    The days a daily engagement aggregate builds from `spine`: all of them, or on an
    incremental run the days to recompute and the days new to the spine (the rows
    engagement_days_replaced() deletes are these and those of days that left it).
-#}
{% macro engagement_days(spine) -%}
    select * from {{ spine }}
    {% if is_incremental() -%}
        where
            date_day in {{ engagement_days_to_recompute() }}
            or date_day not in (select date_day from {{ this }})
    {%- endif %}
{%- endmacro %}

{#- A hook: record the days of the rows of `relation` whose key is a changed post. -#}
{% macro record_changed_days(relation, key) -%}
    {{ record_changed_keys(
        'x_day',
        'select created_date from ' ~ relation ~ ' where ' ~ key ~ ' in ' ~ changed_keys('x_post')
    ) }}
{%- endmacro %}

{#-
    A hook of the large marts: record the keys (`key_column`) this build replaces, so that
    the publish step replaces those rows in a copy of the published file instead of copying
    the whole table (engagement/warehouse/build.py). Kept until a publish succeeds. The keys
    are those `keys_sql` (one column) selects: by default the changed posts (kind x_post),
    for the X facts; the sessions' mart, whose rows other changes replace, passes the days
    of its rows to replace, as a pre- and a post-hook (before and after the replacement).
-#}
{% macro record_unpublished_keys(key_column, keys_sql=none) -%}
    insert or replace into _engagement.mart_keys values ('{{ this.identifier }}', '{{ key_column }}');
    {% if not flags.FULL_REFRESH and load_relation(this) is not none -%}
        insert into _engagement.unpublished_keys
        select distinct '{{ this.identifier }}', cast(key as varchar)
        from ({{ keys_sql or "select key from " ~ changed_keys('x_post') }}) as keys (key)
        except
        select mart, key from _engagement.unpublished_keys
    {%- endif %}
{%- endmacro %}

{#-
    Per-post link attribution (int_x__post_support_links, fct_x_post_attributed_sessions).
    A session is credited to the most recent own post linking its landing path in the 24
    hours before it, so a post's links decide the credits of the sessions of the day it was
    posted and of the next day. int_x__post_support_links records those two days of every
    post it recomputes, as it was and as it is (kind x_link_day); the mart recomputes them
    with the support-site days int_support_site__changed_days lists.
-#}

{#- The days whose sessions the links of the changed posts of `relation` can credit. -#}
{% macro post_link_days(relation) -%}
    select unnest([cast(post_created_at as date), cast(post_created_at + interval 1 day as date)])
    from {{ relation }}
    where post_id in {{ changed_keys('x_post') }}
{%- endmacro %}

{#-
    The session days fct_x_post_attributed_sessions recomputes, as a subquery. Written out,
    not ref()'d (see support_site_days_to_recompute); the model ref()s both models.
-#}
{% macro attribution_days_to_recompute() -%}
    (
        select date_day from intermediate.int_support_site__changed_days
        union all
        select cast(key as date) from _engagement.changed_keys where kind = 'x_link_day'
    )
{%- endmacro %}
