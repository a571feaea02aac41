with truelayer_booked as (
    select * from {{ ref('stg_truelayer__transactions') }}
),

truelayer_pending as (
    select * from {{ ref('stg_truelayer__pending_transactions') }}
),

truelayer_card_booked as (
    select * from {{ ref('stg_truelayer__card_transactions') }}
),

truelayer_card_pending as (
    select * from {{ ref('stg_truelayer__card_pending_transactions') }}
),

berlin_group_booked as (
    select * from {{ ref('stg_berlin_group__transactions') }}
),

berlin_group_pending as (
    select * from {{ ref('stg_berlin_group__pending_transactions') }}
),

revolut_booked as (
    select * from {{ ref('stg_revolut__transactions') }}
),

-- Revolut charges fees apart from the leg amount: one row per non-zero fee.
revolut_fees as (
    select * from {{ ref('stg_revolut__fees') }}
),

revolut_pending as (
    select * from {{ ref('stg_revolut__pending_transactions') }}
),

gocardless_booked as (
    select * from {{ ref('stg_gocardless__transactions') }}
),

gocardless_pending as (
    select * from {{ ref('stg_gocardless__pending_transactions') }}
),

-- Every declarative REST bank (connectors/rest/*.yaml), booked and pending rows.
rest_transactions as (
    select * from {{ ref('stg_rest__transactions') }}
),

fibank_booked as (
    select * from {{ ref('stg_fibank__transactions') }}
),

-- Statement files of every format (camt.053, MT940, CSV, JSON, OFX).
file_entries as (
    select * from {{ ref('stg_files__transactions') }}
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

-- The same booked movement reported by an API and by a statement file is one row: the API's.
-- Its key was there first (a file arrives the next morning) and stays stable for overrides and
-- matches, and it carries what files lack (pending lineage, merchant, MCC, provider category).
-- Movements pair on account, booking day and amount, the n-th of the API's with the n-th of the
-- file's in time order, so two equal payments on one day are two rows on both sides.
api_booked_occurrences as (
    select
        account_key,
        booking_date,
        amount,
        row_number() over (
            partition by account_key, booking_date, amount order by booked_at, source, source_transaction_id
        ) as occurrence
    from with_accounts
    where status = 'booked' and account_key is not null
),

file_occurrences as (
    select
        files_with_accounts.*,
        -- Two statement formats of one account (a bank moving from MT940 to camt.053 sends both for
        -- a while): the richer format's row stays. camt.053 carries structured parties and references,
        -- MT940 a :86: text, OFX and CSV less, JSON the least.
        case source
            when 'camt053' then 1
            when 'mt940' then 2
            when 'ofx' then 3
            when 'csv' then 4
            else 5
        end as format_priority,
        row_number() over (
            partition by account_key, booking_date, amount, status, source
            order by booked_at, source_transaction_id
        ) as occurrence
    from files_with_accounts
),

files_deduplicated as (
    select file_occurrences.*
    from file_occurrences
    where file_occurrences.account_key is null
        or not exists (
            select 1
            from file_occurrences as richer
            where richer.account_key = file_occurrences.account_key
                and richer.booking_date = file_occurrences.booking_date
                and richer.amount = file_occurrences.amount
                and richer.status = file_occurrences.status
                and richer.occurrence = file_occurrences.occurrence
                and richer.format_priority < file_occurrences.format_priority
        )
),

files_not_reported_by_an_api as (
    select files_deduplicated.*
    from files_deduplicated
    where files_deduplicated.status <> 'booked'
        or files_deduplicated.account_key is null
        or not exists (
            select 1
            from api_booked_occurrences
            where api_booked_occurrences.account_key = files_deduplicated.account_key
                and api_booked_occurrences.booking_date = files_deduplicated.booking_date
                and api_booked_occurrences.amount = files_deduplicated.amount
                and api_booked_occurrences.occurrence = files_deduplicated.occurrence
        )
),

{%- set canonical_columns = [
    'transaction_key', 'source', 'account_key', 'account_ref', 'source_transaction_id', 'entry_reference',
    'end_to_end_id', 'status', 'booking_date', 'value_date', 'booked_at', 'amount', 'currency',
    'counterparty_name', 'counterparty_iban', 'merchant_name', 'mcc', 'description',
    'bank_transaction_code', 'provider_category', 'provider_subcategory', 'balance_after', 'raw_record_key',
] %}

final as (
    select {{ canonical_columns | join(', ') }}
    from with_accounts
    union all
    select {{ canonical_columns | join(', ') }}
    from files_not_reported_by_an_api
)

select * from final
