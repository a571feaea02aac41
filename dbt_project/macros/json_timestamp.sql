{#- An ISO-8601 text as timestamptz: with an offset as given, without one as UTC. -#}
{% macro json_timestamp(expression) -%}
    case
        when {{ expression }} ~ '(Z|[+-][0-9]{2}:?[0-9]{2})$' then ({{ expression }})::timestamptz
        else ({{ expression }})::timestamp at time zone 'UTC'
    end
{%- endmacro %}
