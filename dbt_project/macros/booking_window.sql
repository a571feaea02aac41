{#- A setting of the run's window (min_date, max_date, lookback_days): the environment variable
    BANKFLOW_WINDOW_<NAME> when set (the Dagster pipeline sets them), else the dbt var. The pipeline
    passes its window this way because dbt ties its saved parse to --vars: every new window made
    each dbt step parse the whole project again, while a changed environment variable reparses only
    the files that read it. -#}
{% macro window_var(name) -%}
    {{ return(env_var('BANKFLOW_WINDOW_' ~ (name | upper), '') or var(name)) }}
{%- endmacro %}

{#- The first booking day a run rebuilds: min_date - lookback_days (a SQL date expression). -#}
{% macro window_start() -%}
    (cast('{{ window_var("min_date") }}' as date) - {{ window_var("lookback_days") | int }})
{%- endmacro %}

{#- The incremental window on a date column: [min_date - lookback_days, max_date).
    Half-open, so a boundary day is never in two runs. -#}
{% macro booking_window(column) -%}
    {{ column }} >= {{ window_start() }}
    and {{ column }} < cast('{{ window_var("max_date") }}' as date)
{%- endmacro %}

{#- Before an incremental fct_transactions insert: drop the days int_transactions_unioned rebuilt
    (and every pending row, since a pending set is always replaced whole). -#}
{% macro delete_rebuilt_rows() -%}
    {% if is_incremental() %}
        delete from {{ this }}
        where {{ on_rebuilt_days() }}
    {% endif %}
{%- endmacro %}

{#- fct_transactions' pre-hook on incremental runs: collect the rows outside the window whose
    derived columns changed since they were built, to rebuild with the window (delete+insert
    replaces them by transaction_key):
    - a transfer pairing that appeared, changed or went away: a late leg (tomorrow's statement file, a
      second source) pairs with a row booked before the lookback, and the older leg must carry the
      group key too, or the pair is half-flagged and spend counts one leg;
    - a user's category override set on (or removed from) an old row (`bankflow categorise`), which
      must not wait for its day to be rebuilt; overrides by the key a row has now
      (int_category_overrides: one set on a pending row is its booked row's).
    - the learned layer's current prediction for a row no rule decides.
    Rule changes restate history only on a full refresh (see `bankflow rules backtest`). -#}
{% macro collect_restated_keys() -%}
    {% if is_incremental() %}
    create temporary table {{ restated_keys_table() }} on commit drop as
    select paired.transaction_key
    from {{ ref('int_transfers_paired') }} as paired
    left join {{ this }} as built on paired.transaction_key = built.transaction_key
    where built.transfer_group_key is distinct from paired.transfer_group_key
    union
    select built.transaction_key
    from {{ this }} as built
    where {{ transfer_group_gone('built') }}
    union
    select overrides.transaction_key
    from {{ ref('int_category_overrides') }} as overrides
    inner join {{ this }} as built on overrides.transaction_key = built.transaction_key
    where built.category is distinct from overrides.category
        or built.category_source is distinct from 'override'
    union
    select built.transaction_key
    from {{ this }} as built
    where built.category_source = 'override'
        and not exists (
            select 1
            from {{ ref('int_category_overrides') }} as overrides
            where overrides.transaction_key = built.transaction_key
        )
    union
    -- The learned layer's predictions are replaced on every run: a row it decides (or no longer
    -- decides) follows the current prediction.
    select built.transaction_key
    from {{ this }} as built
    left join {{ ref('stg_ops__category_predictions') }} as predictions
        on built.transaction_key = predictions.transaction_key
    where (built.category_source is null or built.category_source = 'model')
        and built.category is distinct from coalesce(predictions.category, 'uncategorised');

    analyze {{ restated_keys_table() }};
    {% endif %}
{%- endmacro %}

{#- fct_transactions' pre-hook on incremental runs, after collect_restated_keys: every key the run
    builds (the rebuilt days' rows and the restated ones), once, in an analyzed temp table. The
    model reads its rows and their categories by these keys: given the window's conditions
    instead, the planner computed the categorisation view for all of history (its estimates for
    them are far off), and the day's run grew with the history. -#}
{% macro collect_keys_to_build() -%}
    {% if is_incremental() %}
    create temporary table {{ keys_to_build_table() }} on commit drop as
    select transactions.transaction_key
    from {{ ref('int_transactions_unioned') }} as transactions
    where {{ on_rebuilt_days() }}
    union
    select restated.transaction_key
    from {{ restated_keys_table() }} as restated;

    analyze {{ keys_to_build_table() }};
    {% endif %}
{%- endmacro %}

{#- int_transactions_unioned's post-hook: a GIN index on the keys of the reports each row
    displaced, for int_category_overrides to find an override's kept row without reading all
    rows. Created when missing (a new table, or a warehouse built before it), so the name is
    Postgres's: during a full refresh the replaced table still holds an index by any fixed name. -#}
{% macro index_duplicate_keys() -%}
    do $$
    begin
        if not exists (
            select 1
            from pg_indexes
            where schemaname = '{{ this.schema }}'
                and tablename = '{{ this.identifier }}'
                and indexdef like '%string_to_array(duplicate_transaction_keys%'
        ) then
            create index on {{ this }} using gin (string_to_array(duplicate_transaction_keys, ','))
            where duplicate_transaction_keys <> '';
        end if;
    end
    $$
{%- endmacro %}

{% macro keys_to_build_table() -%}
    pg_temp.fct_transactions__keys_to_build
{%- endmacro %}

{#- A post-hook of the large incremental models: a full build leaves a new table without
    statistics until autovacuum gets to it, and the next incremental run's lookups by index
    were planned as scans of the whole history. -#}
{% macro analyze_full_build() -%}
    {% if not is_incremental() %}
        analyze {{ this }}
    {% endif %}
{%- endmacro %}

{#- The session's table of the keys fct_transactions restates (dropped at commit): the model and
    its change log (macro record_fct_transactions_changes) read it. -#}
{% macro restated_keys_table() -%}
    pg_temp.fct_transactions__restated_keys
{%- endmacro %}

{#- After an incremental insert: a row still carrying a transfer group that int_transfers_paired
    no longer has was restated above (collect_restated_keys) and not rebuilt, so it is gone
    from every source (a statement file replaced by a version without it, a reloaded day): keep it
    and the mart holds a movement no source reports, with a dangling group key. -#}
{% macro delete_vanished_transfer_legs() -%}
    {% if is_incremental() %}
        delete from {{ this }} as built
        where {{ transfer_group_gone('built') }}
    {% endif %}
{%- endmacro %}

{#- A built fct_transactions row (alias `built`) whose transfer group int_transfers_paired no longer has. -#}
{% macro transfer_group_gone(built) -%}
    {{ built }}.transfer_group_key is not null
    and not exists (
        select 1
        from {{ ref('int_transfers_paired') }} as paired
        where paired.transaction_key = {{ built }}.transaction_key
            and paired.transfer_group_key = {{ built }}.transfer_group_key
    )
{%- endmacro %}

{#- The first booking day whose transfer pairs an incremental run redoes: a pair with a leg on or
    after it may involve a row the run rebuilds ([min_date - lookback_days, max_date)), whose
    partner is at most transfer_max_days away. Older pairs are kept as built. -#}
{% macro transfer_pairs_rebuilt_from() -%}
    ({{ window_start() }} - {{ var("transfer_max_days") | int }})
{%- endmacro %}

{#- Before an incremental int_transfers_paired run: drop the pairs it redoes (both legs of each) and
    those with a leg that is no longer a booked row of int_transactions_unioned on the day it was
    paired on (gone from every source, pending again, or moved to another day); fct_transactions
    then restates their legs. -#}
{% macro delete_repaired_transfers() -%}
    {% if is_incremental() %}
        delete from {{ this }}
        where transfer_group_key in (
            select paired.transfer_group_key
            from {{ this }} as paired
            where paired.booking_date >= {{ transfer_pairs_rebuilt_from() }}
                or {{ near_rebuilt_days('paired.booking_date', var('transfer_max_days') | int) }}
                or not exists (
                    select 1
                    from {{ ref('int_transactions_unioned') }} as transactions
                    where transactions.transaction_key = paired.transaction_key
                        and transactions.status = 'booked'
                        and transactions.booking_date = paired.booking_date
                        and transactions.account_key is not null
                        and transactions.amount <> 0
                )
        )
    {% endif %}
{%- endmacro %}

{#- The staging models staged incrementally from raw (macro incremental_staging_config), whose
    restaged days int_transactions_rebuilt_days lists. -#}
{#- A pre-hook of every incremental model: two runs building it at once (a schedule and a backfill,
    the files' refresh) would both delete what they rebuild before either inserts, and both insert.
    The lock is held until the model's transaction commits, so the second run waits and then
    rebuilds on the first one's rows. -#}
{% macro serialize_builds() -%}
    select pg_advisory_xact_lock(hashtext('{{ this }}'))
{%- endmacro %}

{#- The raw tables those models stage, as (source name, table name). -#}
{% macro incrementally_staged_raw_tables() -%}
    {{ return([
        ('truelayer', 'transactions'), ('truelayer', 'card_transactions'), ('berlin_group', 'transactions'),
        ('gocardless', 'transactions'), ('revolut', 'transactions'), ('rest', 'transactions'),
        ('fibank', 'transactions'), ('files', 'entries'),
    ]) }}
{%- endmacro %}

{% macro incrementally_staged_transactions() -%}
    {{ return([
        'stg_truelayer__transactions', 'stg_truelayer__card_transactions', 'stg_berlin_group__transactions',
        'stg_gocardless__transactions', 'stg_revolut__transactions', 'stg_revolut__fees',
        'stg_rest__transactions', 'stg_fibank__transactions', 'stg_files__transactions',
    ]) }}
{%- endmacro %}

{#- A row (of an incrementally staged model, int_transactions_unioned) that an incremental run
    rebuilds: pending, in the window, or on a day the run restaged a row onto
    (int_transactions_rebuilt_days; a model calling this declares `-- depends_on` on it). Always
    true on a full build. -#}
{% macro on_rebuilt_days() -%}
    {%- if is_incremental() -%}
    (status = 'pending'
        or booking_date is null
        or ({{ booking_window('booking_date') }})
        or booking_date = any(array(select restaged.booking_date from {{ ref('int_transactions_rebuilt_days') }} as restaged)))
    {%- else -%}
    true
    {%- endif -%}
{%- endmacro %}

{#- Before an incremental int_transactions_unioned run: drop the rows it rebuilds. -#}
{% macro delete_reunioned_days() -%}
    {% if is_incremental() %}
        delete from {{ this }}
        where {{ on_rebuilt_days() }}
    {% endif %}
{%- endmacro %}

{#- A date within `days` days of a day int_transactions_rebuilt_days lists (an older day the union
    rebuilt beyond the window: its transfer pairs are redone with it). -#}
{% macro near_rebuilt_days(column, days) -%}
    {{ column }} = any(array(
        select rebuilt.booking_date + day_offset.day_offset
        from {{ ref('int_transactions_rebuilt_days') }} as rebuilt
        cross join generate_series(-{{ days }}, {{ days }}) as day_offset (day_offset)
    ))
{%- endmacro %}
