{#- Incremental staging of a raw transactions table: a day's run restages the raw records it
    reloaded, not the history.

    Raw changes only where an extract (or a statement file) replaced a scope of partitions, and the
    pipeline's dbt run covers those partitions (its window, macro window_start). A staged row is
    derived from every landing of its raw record_key (the latest fetch wins, before any state
    filter), so the run restages whole record keys: those landed in the window's partitions, and
    those whose staged row came from a window partition (a landing that is gone now, when the
    scope was reloaded without it). It deletes their staged rows (pre-hook) and stages them again
    from all their landings, in and outside the window: a posting the bank moved to another day
    keeps one row, the latest landing's, as a full build gives.

    int_transactions_rebuilt_days lists the days the union must rebuild beyond the window for these
    rows: where restaged rows now sit, where they sat before, and days of accounts whose key changed.

    What this relies on: every raw reload is followed by a dbt run whose window covers the reloaded
    partitions (the daily pipeline's, or the marts refresh after statement files, which includes
    the days of the file versions replaced). A reload whose dbt run failed is restaged by the next
    run over those partitions (a re-run of the partition), or by a full refresh. -#}

{#- The config of an incremental staging model of raw table source(source_name, table_name). -#}
{% macro incremental_staging_config(source_name, table_name) -%}
    {{ config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=["{{ serialize_builds() }}", "{{ delete_restaged_rows('" ~ source_name ~ "', '" ~ table_name ~ "') }}"],
        post_hook="{{ analyze_full_build() }}",
        indexes=[
            {'columns': ['raw_record_key']},
            {'columns': ['raw_partition_key']},
            {'columns': ['booking_date']},
            {'columns': ['status']},
            {'columns': ['account_ref']},
        ],
    ) }}
{%- endmacro %}

{#- A raw partition_key in the run's window (ISO day text, so an index on it serves). Undated
    statement entries (partition 'undated', a handful) are in every run, as in a full build. -#}
{% macro raw_partition_in_window(column) -%}
    {%- set first = modules.datetime.date.fromisoformat(window_var('min_date'))
        - modules.datetime.timedelta(days=window_var('lookback_days') | int) -%}
    ({{ column }} >= '{{ first.isoformat() }}' and {{ column }} < '{{ window_var("max_date") }}'
        or {{ column }} = 'undated')
{%- endmacro %}

{#- The session's table of record keys this model restages (dropped at commit). -#}
{% macro restaged_keys_table() -%}
    pg_temp.{{ this.identifier }}__restaged_keys
{%- endmacro %}

{#- Pre-hook: collect the record keys to restage and delete their staged rows. -#}
{% macro delete_restaged_rows(source_name, table_name) -%}
    {% if is_incremental() %}
        create temporary table {{ restaged_keys_table() }} on commit drop as
        select landed.record_key
        from {{ source(source_name, table_name) }} as landed
        where {{ raw_partition_in_window('landed.partition_key') }}
        union
        select staged.raw_record_key
        from {{ this }} as staged
        where {{ raw_partition_in_window('staged.raw_partition_key') }};

        analyze {{ restaged_keys_table() }};

        delete from {{ this }}
        where raw_record_key in (select record_key from {{ restaged_keys_table() }});
    {% endif %}
{%- endmacro %}

{#- The model's import CTE body: every landing of the record keys it restages (all of raw on a
    full build). -#}
{% macro restaged_landings(source_name, table_name) -%}
    select * from {{ source(source_name, table_name) }}
    {% if is_incremental() %}
    where record_key in (select record_key from {{ restaged_keys_table() }})
    {% endif %}
{%- endmacro %}
