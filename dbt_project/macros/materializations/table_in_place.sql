{#
  A table rewritten in place: the new rows are built beside it, and when their columns are the
  table's (names and types, in order) the table's rows are replaced by them in one transaction.
  The relation itself is never dropped.

  Why: an intermediate model that several views read (int_transactions_unioned: categorisation,
  pending matching, overrides, transfer pairing) re-ran its dedupe over all of history in each of
  them as a view. As a dbt `table` it would be swapped and the backup dropped with CASCADE, taking
  those views with it until a later step rebuilt them (see view_in_place.sql). In place, readers
  see the old rows until the commit, then the new ones, and the views on it stay.

  A changed column list, a missing table or a view of the same name (an older deployment) falls
  back to drop-and-create; the views on it are rebuilt downstream in the same run.
#}
{%- materialization table_in_place, adapter='postgres' -%}

  {%- set existing_relation = load_cached_relation(this) -%}
  {%- set target_relation = this.incorporate(type='table') -%}
  {%- set intermediate_relation = make_intermediate_relation(target_relation) -%}
  {%- set preexisting_intermediate_relation = load_cached_relation(intermediate_relation) -%}
  {%- set grant_config = config.get('grants') -%}

  {{ run_hooks(pre_hooks, inside_transaction=False) }}

  {{ drop_relation_if_exists(preexisting_intermediate_relation) }}

  {{ run_hooks(pre_hooks, inside_transaction=True) }}

  {% call statement('main') -%}
    {{ get_create_table_as_sql(False, intermediate_relation, sql) }}
  {%- endcall %}

  {%- set in_place = existing_relation is not none
        and existing_relation.is_table
        and bankflow_same_columns(existing_relation, intermediate_relation) -%}

  {% if in_place %}
    {% call statement('replace_rows') -%}
      delete from {{ target_relation }};
      insert into {{ target_relation }} select * from {{ intermediate_relation }};
    {%- endcall %}
    {{ drop_relation_if_exists(intermediate_relation) }}
  {% else %}
    {% if existing_relation is not none %}
      {{ drop_relation_if_exists(existing_relation) }}
    {% endif %}
    {{ adapter.rename_relation(intermediate_relation, target_relation) }}
  {% endif %}

  {#- Named after their columns, so a later run finds them (dbt's own index names carry a timestamp).
      Statistics afresh: the planner would otherwise plan the readers on the old row count. -#}
  {% call statement('indexes_and_statistics') -%}
    {% for index in config.get('indexes', []) %}
      create index if not exists {{ adapter.quote(this.identifier ~ '__' ~ (index['columns'] | join('_')) ~ '_idx') }}
        on {{ target_relation }} ({{ index['columns'] | join(', ') }});
    {% endfor %}
    analyze {{ target_relation }};
  {%- endcall %}

  {% do apply_grants(target_relation, grant_config, should_revoke=should_revoke(existing_relation, full_refresh_mode=True)) %}
  {% do persist_docs(target_relation, model) %}

  {{ run_hooks(post_hooks, inside_transaction=True) }}

  {{ adapter.commit() }}

  {{ run_hooks(post_hooks, inside_transaction=False) }}

  {{ return({'relations': [target_relation]}) }}

{%- endmaterialization -%}


{#- True when `old` and `new` have the same columns, in order, with the same types. -#}
{% macro bankflow_same_columns(old, new) %}
  {%- set same_count = adapter.get_columns_in_relation(old) | length
        == adapter.get_columns_in_relation(new) | length -%}
  {{ return(same_count and bankflow_view_columns_extend(old, new)) }}
{% endmacro %}
