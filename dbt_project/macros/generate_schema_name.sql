{#- Models land in exactly the schema their folder names (staging, intermediate, marts),
    not `<target>_<schema>`: BI roles are granted on these fixed names. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
