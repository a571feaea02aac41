{#- Incremental by booking day: a run rebuilds the days of its window, the days its staging run
    restaged a row onto or an account's key changed on (int_transactions_rebuilt_days) and every
    pending row. The cross-source dedupe below partitions by booking day, so a
    rebuilt day comes out as a full build gives it; a row that moved to a rebuilt day replaces its
    old day's row by transaction_key (delete+insert). -#}
{{ config(
    materialized='incremental',
    unique_key='transaction_key',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    pre_hook=["{{ serialize_builds() }}", "{{ delete_reunioned_days() }}"],
    post_hook=["{{ index_duplicate_keys() }}", "{{ analyze_full_build() }}"],
    indexes=[
        {'columns': ['transaction_key']},
        {'columns': ['booking_date']},
        {'columns': ['status']},
        {'columns': ['source', 'account_ref', 'account_key']},
        {'columns': ['raw_record_key']},
    ],
) }}

-- depends_on: {{ ref('int_transactions_rebuilt_days') }}
with truelayer_booked as (
    select * from {{ ref('stg_truelayer__transactions') }}
    where {{ on_rebuilt_days() }}
),

truelayer_pending as (
    select * from {{ ref('stg_truelayer__pending_transactions') }}
),

truelayer_card_booked as (
    select * from {{ ref('stg_truelayer__card_transactions') }}
    where {{ on_rebuilt_days() }}
),

truelayer_card_pending as (
    select * from {{ ref('stg_truelayer__card_pending_transactions') }}
),

berlin_group_booked as (
    select * from {{ ref('stg_berlin_group__transactions') }}
    where {{ on_rebuilt_days() }}
),

berlin_group_pending as (
    select * from {{ ref('stg_berlin_group__pending_transactions') }}
),

revolut_booked as (
    select * from {{ ref('stg_revolut__transactions') }}
    where {{ on_rebuilt_days() }}
),

-- Revolut charges fees apart from the leg amount: one row per non-zero fee.
revolut_fees as (
    select * from {{ ref('stg_revolut__fees') }}
    where {{ on_rebuilt_days() }}
),

revolut_pending as (
    select * from {{ ref('stg_revolut__pending_transactions') }}
),

gocardless_booked as (
    select * from {{ ref('stg_gocardless__transactions') }}
    where {{ on_rebuilt_days() }}
),

gocardless_pending as (
    select * from {{ ref('stg_gocardless__pending_transactions') }}
),

-- Every declarative REST bank (connectors/rest/*.yaml), booked and pending rows.
rest_transactions as (
    select * from {{ ref('stg_rest__transactions') }}
    where {{ on_rebuilt_days() }}
),

fibank_booked as (
    select * from {{ ref('stg_fibank__transactions') }}
    where {{ on_rebuilt_days() }}
),

-- Statement files of every format (camt.053, MT940, CSV, JSON, OFX).
file_entries as (
    select * from {{ ref('stg_files__transactions') }}
    where {{ on_rebuilt_days() }}
),

accounts as (
    select * from {{ ref('int_accounts_unified') }}
),

revolut_legs as (
    select * from revolut_booked
    union all
    select * from revolut_fees
    union all
    select * from revolut_pending
),

-- A landed Revolut transaction may also have a leg on an account the connection does not list;
-- staging reads one source and cannot tell, so the accounts decide here.
revolut_connected_legs as (
    select revolut_legs.*
    from revolut_legs
    where revolut_legs.account_ref in (
        select accounts.account_ref
        from accounts
        where accounts.source = 'revolut'
    )
),

unioned as (
    select * from truelayer_booked
    union all
    select * from truelayer_pending
    union all
    select * from truelayer_card_booked
    union all
    select * from truelayer_card_pending
    union all
    select * from berlin_group_booked
    union all
    select * from berlin_group_pending
    union all
    select * from revolut_connected_legs
    union all
    select * from gocardless_booked
    union all
    select * from gocardless_pending
    union all
    select * from rest_transactions
    union all
    select * from fibank_booked
),

with_accounts as (
    select
        unioned.*,
        accounts.account_key
    from unioned
    left join accounts
        on unioned.source = accounts.source
        and unioned.account_ref = accounts.account_ref
),

files_with_accounts as (
    select
        file_entries.*,
        accounts.account_key
    from file_entries
    left join accounts
        on file_entries.source = accounts.source
        and file_entries.account_ref = accounts.account_ref
),

{%- set canonical_columns = [
    'transaction_key', 'source', 'account_key', 'account_ref', 'source_transaction_id', 'entry_reference',
    'end_to_end_id', 'status', 'booking_date', 'value_date', 'booked_at', 'amount', 'currency',
    'counterparty_name', 'counterparty_iban', 'merchant_name', 'mcc', 'description',
    'bank_transaction_code', 'provider_category', 'provider_subcategory', 'balance_after', 'raw_record_key',
] %}

reports as (
    select {{ canonical_columns | join(', ') }}
    from with_accounts
    union all
    select {{ canonical_columns | join(', ') }}
    from files_with_accounts
),

-- One real movement reported by several sources (an API and a statement file, two aggregators
-- on one account, two statement formats of one account) is one row: the report of the best
-- source (macro source_priority). Reports pair on the real account, booking day, amount and
-- status, the n-th of one reporter (source and its account) with the n-th of another in time
-- order, so two equal payments on one day stay two rows on every side. A row with no known
-- account is its own movement.
occurrences as (
    select
        reports.*,
        {{ source_priority('reports.source') }} as source_priority,
        coalesce(reports.account_key, 'unknown-account:' || reports.transaction_key) as movement_account,
        row_number() over (
            partition by reports.account_key, reports.booking_date, reports.amount, reports.status,
                reports.source, reports.account_ref
            order by reports.booked_at, reports.source_transaction_id, reports.transaction_key
        ) as occurrence
    from reports
),

ranked as (
    select
        occurrences.*,
        row_number() over movement as reporter_rank,
        array_agg(occurrences.source) over movement as reporter_sources,
        array_agg(occurrences.transaction_key) over movement as reporter_keys
    from occurrences
    window movement as (
        partition by occurrences.movement_account, occurrences.booking_date, occurrences.amount,
            occurrences.status, occurrences.occurrence
        order by occurrences.source_priority, occurrences.source, occurrences.account_ref
        rows between unbounded preceding and unbounded following
    )
),

final as (
    select
        {{ canonical_columns | join(', ') }},
        -- Text, comma-separated (as dim_accounts.sources), not arrays: dbt unit tests cannot
        -- type a Postgres array column of an input model. Each source once, best first (one
        -- source through two connections reports twice).
        (
            select string_agg(reporter.source, ',' order by reporter.position)
            from (
                select reported.source, min(reported.position) as position
                from unnest(reporter_sources) with ordinality as reported (source, position)
                group by reported.source
            ) as reporter
        ) as reported_by,
        array_to_string(reporter_keys[2:], ',') as duplicate_transaction_keys
    from ranked
    where reporter_rank = 1
)

select * from final
