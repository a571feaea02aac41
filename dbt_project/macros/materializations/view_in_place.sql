{#
  Views are replaced in place (CREATE OR REPLACE VIEW) whenever the new definition keeps the old
  columns as a prefix, names and types alike, which is every run that does not change a model's
  columns.

  Why: dbt's default view materialization renames the old view away and drops it with CASCADE.
  Postgres views that select from it follow the rename and are dropped with it, so rebuilding one
  staging model silently removes the intermediate views built on it until they are rebuilt too;
  and two threads rebuilding two staging views that feed one intermediate view both try to drop
  it, which Postgres breaks as a deadlock (seen in CI: pg_rewrite AccessExclusiveLock). In place,
  only the replaced view is locked and its dependents stay.

  A changed column list (a column removed, renamed, retyped or reordered) cannot be replaced in
  place; that run falls back to dbt's swap-and-drop, and the dependents are rebuilt downstream.
#}
{%- materialization view, adapter='postgres' -%}

  {%- set existing_relation = load_cached_relation(this) -%}
  {%- set target_relation = this.incorporate(type='view') -%}
  {%- set intermediate_relation = make_intermediate_relation(target_relation) -%}
  {%- set preexisting_intermediate_relation = load_cached_relation(intermediate_relation) -%}
  {%- set backup_relation_type = 'view' if existing_relation is none else existing_relation.type -%}
  {%- set backup_relation = make_backup_relation(target_relation, backup_relation_type) -%}
  {%- set preexisting_backup_relation = load_cached_relation(backup_relation) -%}
  {%- set grant_config = config.get('grants') -%}

  {{ run_hooks(pre_hooks, inside_transaction=False) }}

  {{ drop_relation_if_exists(preexisting_intermediate_relation) }}
  {{ drop_relation_if_exists(preexisting_backup_relation) }}

  {{ run_hooks(pre_hooks, inside_transaction=True) }}

  -- The new definition is created beside the old one first, to read its columns.
  {% call statement('main') -%}
    {{ get_create_view_as_sql(intermediate_relation, sql) }}
  {%- endcall %}

  {%- set in_place = existing_relation is not none
        and existing_relation.is_view
        and bankflow_view_columns_extend(existing_relation, intermediate_relation) -%}

  {% if in_place %}
    {{ drop_relation_if_exists(intermediate_relation) }}
    {% call statement('replace_in_place') -%}
      create or replace view {{ target_relation }} as (
        {{ sql }}
      );
    {%- endcall %}
  {% else %}
    {% if existing_relation is not none %}
      {% set existing_relation = load_cached_relation(existing_relation) %}
      {% if existing_relation is not none %}
        {{ adapter.rename_relation(existing_relation, backup_relation) }}
      {% endif %}
    {% endif %}
    {{ adapter.rename_relation(intermediate_relation, target_relation) }}
  {% endif %}

  {% set should_revoke = should_revoke(existing_relation, full_refresh_mode=True) %}
  {% do apply_grants(target_relation, grant_config, should_revoke=should_revoke) %}

  {% do persist_docs(target_relation, model) %}

  {{ run_hooks(post_hooks, inside_transaction=True) }}

  {{ adapter.commit() }}

  {% if not in_place %}
    {{ drop_relation_if_exists(backup_relation) }}
  {% endif %}

  {{ run_hooks(post_hooks, inside_transaction=False) }}

  {{ return({'relations': [target_relation]}) }}

{%- endmaterialization -%}


{#- True when every column of `old` is, in order and with its type, the start of `new`'s columns:
    the only change CREATE OR REPLACE VIEW accepts. -#}
{% macro bankflow_view_columns_extend(old, new) %}
  {%- set old_columns = adapter.get_columns_in_relation(old) -%}
  {%- set new_columns = adapter.get_columns_in_relation(new) -%}
  {%- if old_columns | length == 0 or old_columns | length > new_columns | length -%}
    {{ return(false) }}
  {%- endif -%}
  {%- for column in old_columns -%}
    {%- set candidate = new_columns[loop.index0] -%}
    {%- if column.name != candidate.name or column.data_type != candidate.data_type -%}
      {{ return(false) }}
    {%- endif -%}
  {%- endfor -%}
  {{ return(true) }}
{% endmacro %}
