{#- What fct_transactions changed, for the models built on it that keep per-period totals
    (fct_transactions_monthly, fct_account_days): they rebuild the periods with a change since
    their last build, not the history.

    fct_transactions records the booking days each build may change in a log
    (intermediate.fct_transactions_changes), inside its own transaction: the window, the days the
    union rebuilt, the old and new days of the rows it restated, the days of pending rows. A full
    build records (-infinity, infinity). A model built on it rebuilds the periods (months, days)
    covering the log entries after the last one it consumed, and records the newest entry it read,
    both in its own transaction; so a failed build consumes nothing, and fct_transactions builds
    (serialized, each committing its log entries with its rows) that a consumer has not seen yet
    are rebuilt by its next build, whichever Dagster step or run that is. -#}

{#- The config of a model kept by `grain` ('month' or 'day') from fct_transactions' change log, its
    period in `period_column`, indexed on it and on account_key. -#}
{% macro changed_periods_config(grain, period_column) -%}
    {{ config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=["{{ serialize_builds() }}", "{{ collect_changed_periods('" ~ grain ~ "', '" ~ period_column ~ "') }}"],
        post_hook="{{ prune_fct_transactions_changes() }}",
        indexes=[{'columns': [period_column]}, {'columns': ['account_key']}],
    ) }}
{%- endmacro %}

{% macro fct_transactions_changes_relation() -%}
    {{ return(api.Relation.create(
        database=this.database,
        schema=generate_schema_name('intermediate', none),
        identifier='fct_transactions_changes',
    )) }}
{%- endmacro %}

{% macro fct_transactions_consumers_relation() -%}
    {{ return(api.Relation.create(
        database=this.database,
        schema=generate_schema_name('intermediate', none),
        identifier='fct_transactions_consumers',
    )) }}
{%- endmacro %}

{% macro create_fct_transactions_changes() -%}
    create table if not exists {{ fct_transactions_changes_relation() }} (
        change_id bigserial primary key,
        first_day date not null,
        last_day date not null,
        recorded_at timestamptz not null default now()
    );
    comment on table {{ fct_transactions_changes_relation() }} is
        'Booking-day ranges each fct_transactions build may have changed (macros/changed_periods.sql); read by the models keeping per-period totals of it, pruned once all of them have read an entry.';
    create table if not exists {{ fct_transactions_consumers_relation() }} (
        consumer text primary key,
        through_change_id bigint not null
    );
    comment on table {{ fct_transactions_consumers_relation() }} is
        'The last fct_transactions_changes entry each model built on fct_transactions has rebuilt.';
{%- endmacro %}

{#- fct_transactions pre-hook, before it deletes what it rebuilds: log the days this build may
    change. Needs the session's restated keys table (macro collect_restated_keys). -#}
{% macro record_fct_transactions_changes() -%}
    {{ create_fct_transactions_changes() }}
    {% if is_incremental() %}
        insert into {{ fct_transactions_changes_relation() }} (first_day, last_day)
        select {{ window_start() }}, cast('{{ window_var("max_date") }}' as date) - 1
        union
        select booking_date, booking_date
        from (
            select rebuilt.booking_date from {{ ref('int_transactions_rebuilt_days') }} as rebuilt
            union
            select built.booking_date from {{ this }} as built
            where built.transaction_key in (select transaction_key from {{ restated_keys_table() }})
            union
            select built.booking_date from {{ this }} as built
            where built.status = 'pending'
            union
            select transactions.booking_date from {{ ref('int_transactions_unioned') }} as transactions
            where transactions.transaction_key in (select transaction_key from {{ restated_keys_table() }})
            union
            select transactions.booking_date from {{ ref('int_transactions_unioned') }} as transactions
            where transactions.status = 'pending'
        ) as changed
        where booking_date is not null;
    {% else %}
        insert into {{ fct_transactions_changes_relation() }} (first_day, last_day)
        values ('-infinity', 'infinity');
    {% endif %}
{%- endmacro %}

{#- The session's table of the period ranges a consumer rebuilds (dropped at commit). -#}
{% macro changed_periods_table() -%}
    pg_temp.{{ this.identifier }}__changed_periods
{%- endmacro %}

{#- A consumer's pre-hook: read the log entries it has not consumed (once: the model and its delete
    use the table this writes), merge them into ranges of whole periods (`grain`: 'month' or 'day'),
    delete its rows in those ranges (`period_column`), and mark the entries consumed. A consumer
    with no mark yet (new, or its mark lost) rebuilds everything. -#}
{% macro collect_changed_periods(grain, period_column) -%}
    {{ create_fct_transactions_changes() }}
    create temporary table pg_temp.{{ this.identifier }}__unconsumed on commit drop as
    select changes.change_id, changes.first_day, changes.last_day
    from {{ fct_transactions_changes_relation() }} as changes
    where changes.change_id > coalesce((
        select consumers.through_change_id
        from {{ fct_transactions_consumers_relation() }} as consumers
        where consumers.consumer = '{{ this.identifier }}'
    ), 0)
    union all
    select null, '-infinity', 'infinity'
    where not exists (
        select 1
        from {{ fct_transactions_consumers_relation() }} as consumers
        where consumers.consumer = '{{ this.identifier }}'
    );

    create temporary table {{ changed_periods_table() }} on commit drop as
    with periods as (
        select
            cast(date_trunc('{{ grain }}', first_day) as date) as first_day,
            cast(date_trunc('{{ grain }}', last_day) + interval '1 {{ grain }}' as date) as next_day
        from pg_temp.{{ this.identifier }}__unconsumed
    ),

    -- Ranges overlapping or touching the ones before them continue their island.
    flagged as (
        select
            *,
            case
                when first_day <= max(next_day) over (
                    order by first_day, next_day rows between unbounded preceding and 1 preceding
                ) then 0
                else 1
            end as starts_island
        from periods
    ),

    islands as (
        select
            *,
            sum(starts_island) over (order by first_day, next_day rows between unbounded preceding and current row)
                as island
        from flagged
    )

    select min(first_day) as first_day, max(next_day) as next_day
    from islands
    group by island;

    analyze {{ changed_periods_table() }};

    {% if is_incremental() %}
        delete from {{ this }} as built
        using {{ changed_periods_table() }} as changed
        where built.{{ period_column }} >= changed.first_day
            and built.{{ period_column }} < changed.next_day;
        delete from {{ this }} where {{ period_column }} is null;
    {% endif %}

    insert into {{ fct_transactions_consumers_relation() }} as consumers (consumer, through_change_id)
    select '{{ this.identifier }}', coalesce(max(change_id), 0)
    from pg_temp.{{ this.identifier }}__unconsumed
    on conflict (consumer) do update
        set through_change_id = greatest(consumers.through_change_id, excluded.through_change_id);
{%- endmacro %}

{#- The consumer's import CTE body: the fct_transactions rows in the changed periods (every row on a
    full build), and those without a booking day. -#}
{% macro fct_transactions_in_changed_periods() -%}
    {%- if is_incremental() -%}
    select transactions.*
    from {{ changed_periods_table() }} as changed
    inner join {{ ref('fct_transactions') }} as transactions
        on transactions.booking_date >= changed.first_day
        and transactions.booking_date < changed.next_day
    union all
    select * from {{ ref('fct_transactions') }}
    where booking_date is null
    {%- else -%}
    select * from {{ ref('fct_transactions') }}
    {%- endif -%}
{%- endmacro %}

{#- A consumer's post-hook: drop log entries every consumer has read. -#}
{% macro prune_fct_transactions_changes() -%}
    delete from {{ fct_transactions_changes_relation() }}
    where change_id <= (
        select min(through_change_id) from {{ fct_transactions_consumers_relation() }}
    )
{%- endmacro %}
