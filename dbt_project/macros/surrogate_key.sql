{#- A stable text key from several columns: md5 over the values joined with a separator,
    nulls spelled out so (a, null) and (null, a) differ. -#}
{% macro surrogate_key(columns) -%}
    md5(
        {%- for column in columns %}
        coalesce(cast({{ column }} as text), '<null>'){% if not loop.last %} || '|' ||{% endif %}
        {%- endfor %}
    )
{%- endmacro %}
