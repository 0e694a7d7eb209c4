{#-
    Version 1 (deprecated, see the deprecation_date in _marts__models.yml): version 2 with
    is_answered under its old name, answered. A plain table rebuilt by every build.
-#}

{{ config(materialized='table') }}

with

mentions as (

    select * from {{ ref('fct_x_mentions', v=2) }}

),

final as (

    select * rename (is_answered as answered)
    from mentions

)

select * from final
