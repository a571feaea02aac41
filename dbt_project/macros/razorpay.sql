{#- Razorpay sends money as integer paise and times as unix seconds. -#}

{#- Integer paise text as exact numeric rupees. Division of a numeric is exact here (an integer
    over 100 has two decimals), and round() only fixes the scale at 2; no float anywhere, no
    bigint ceiling. Text that is not an integer gives null rather than failing the view (the
    extract quarantines such records, so this only guards the view). -#}
{% macro paise_to_rupees(expression) -%}
    case when ({{ expression }}) ~ '^-?[0-9]+$' then round(({{ expression }})::numeric / 100, 2) end
{%- endmacro %}

{#- Unix seconds text as timestamptz, by interval arithmetic (no float); null if not an integer. -#}
{% macro unix_timestamp(expression) -%}
    case
        when ({{ expression }}) ~ '^-?[0-9]{1,12}$'
            then timestamptz 'epoch' + ({{ expression }})::bigint * interval '1 second'
    end
{%- endmacro %}

{#- Razorpay's `notes` as a JSON object, whichever of its three shapes it came in: an object as
    sent; `[]` (how Razorpay writes an empty notes map) as {}; a string (the recon report's shape)
    as the object it spells when it is a flat JSON object of scalars (notes are at most 15
    key/value pairs), else null. The regex guards the cast: Postgres 14/15 have no safe jsonb
    parse, and one bad string must not fail the view. -#}
{% macro razorpay_notes(json_value) -%}
    {%- set ws %}[ \t\n\r]*{% endset -%}
    {#- Escapes jsonb accepts: not \u0000, and surrogates only as a high + low pair. -#}
    {%- set escape %}\\(["\\/bfnrt]|u(?!0000)(?![dD][89a-fA-F])[0-9a-fA-F]{4}|u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}){% endset -%}
    {%- set text %}"([^"\\[:cntrl:]]|{{ escape }})*"{% endset -%}
    {%- set scalar %}({{ text }}|-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]{1,4})?|true|false|null){% endset -%}
    {%- set member %}{{ ws }}{{ text }}{{ ws }}:{{ ws }}{{ scalar }}{{ ws }}{% endset -%}
    {%- set notes_text = json_value ~ " #>> '{}'" -%}
    case jsonb_typeof({{ json_value }})
        when 'object' then {{ json_value }}
        when 'array' then case when jsonb_array_length({{ json_value }}) = 0 then '{}'::jsonb end
        when 'string' then
            case
                when {{ notes_text }} ~ '^{{ ws }}\[{{ ws }}\]{{ ws }}$' then '{}'::jsonb
                when {{ notes_text }} ~ '^{{ ws }}\{({{ member }}(,{{ member }})*|{{ ws }})\}{{ ws }}$'
                    then ({{ notes_text }})::jsonb
            end
    end
{%- endmacro %}

{#- The notes exactly as sent when they came as a string; null for an object or a list. -#}
{% macro razorpay_notes_text(json_value) -%}
    case when jsonb_typeof({{ json_value }}) = 'string' then {{ json_value }} #>> '{}' end
{%- endmacro %}
