{#- Keep one row per key: the first by `order_by`. Adds `_row_number`; the caller's final
    CTE selects its columns explicitly. -#}
{% macro deduplicate(relation, partition_by, order_by) -%}
    select ranked.*
    from (
        select
            candidates.*,
            row_number() over (partition by {{ partition_by }} order by {{ order_by }}) as _row_number
        from {{ relation }} as candidates
    ) as ranked
    where ranked._row_number = 1
{%- endmacro %}
