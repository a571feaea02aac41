{#- The incremental window on a date column: [min_date - lookback_days, max_date).
    Half-open, so a boundary day is never in two runs. -#}
{% macro booking_window(column) -%}
    {{ column }} >= cast('{{ var("min_date") }}' as date) - {{ var("lookback_days") | int }}
    and {{ column }} < cast('{{ var("max_date") }}' as date)
{%- endmacro %}

{#- Before an incremental insert: drop what this run rebuilds (the window and every pending
    row, since a pending set is always replaced whole). -#}
{% macro delete_rebuilt_rows() -%}
    {% if is_incremental() %}
        delete from {{ this }}
        where status = 'pending' or ({{ booking_window('booking_date') }})
    {% endif %}
{%- endmacro %}
