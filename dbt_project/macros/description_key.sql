{#- A statement text spelled for comparison across fetches and sources: upper case, every run of
    non-alphanumerics one space, trimmed; null when nothing is left ('Café  Nero*' = 'CAFÉ NERO'). -#}
{% macro description_key(expression) -%}
    nullif(trim(regexp_replace(upper({{ expression }}), '[^[:alnum:]]+', ' ', 'g')), '')
{%- endmacro %}
