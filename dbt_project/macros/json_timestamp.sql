{#- An ISO-8601 text as timestamptz: with an offset as given, without one as UTC. Text that is
    not an ISO date-time gives null rather than failing the whole view (the raw row keeps it);
    a well-formed but impossible day (Feb 30) would fail the cast: the extracts quarantine such rows. -#}
{% macro json_timestamp(expression) -%}
    case
        when {{ expression }} !~ '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]+)?)?)?(Z|[+-][0-9]{2}:?[0-9]{2})?$'
            then null
        when {{ expression }} ~ '(Z|[+-][0-9]{2}:?[0-9]{2})$' then ({{ expression }})::timestamptz
        else ({{ expression }})::timestamp at time zone 'UTC'
    end
{%- endmacro %}

{#- An ISO date text (YYYY-MM-DD) as date; anything else gives null instead of failing the view. -#}
{% macro json_date(expression) -%}
    case when {{ expression }} ~ '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$' then cast({{ expression }} as date) end
{%- endmacro %}
