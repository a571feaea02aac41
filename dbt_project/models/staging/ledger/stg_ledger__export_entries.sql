-- The ledger entries of the accounting system's export files, typed like stg_ledger__entries. An
-- entry id in several files (a month's export, then the year's) is the latest landing's.
with source as (
    select * from {{ source('ledger_export', 'entries') }}
),

latest as (
    select distinct on (record_key) *
    from source
    order by record_key, fetched_at desc, raw_id desc
),

typed as (
    select
        payload ->> 'entry_id' as entry_id,
        upper(replace(payload ->> 'bank_account', ' ', '')) as bank_account,
        nullif(lower(btrim(payload ->> 'entry_type')), '') as entry_type,
        btrim(payload ->> 'document_number') as document_number,
        nullif(btrim(payload ->> 'payment_reference'), '') as payment_reference,
        nullif(btrim(payload ->> 'counterparty_name'), '') as counterparty_name,
        cast(btrim(payload ->> 'amount') as numeric(18, 2)) as amount,
        upper(btrim(payload ->> 'currency')) as currency,
        cast(btrim(payload ->> 'expected_date') as date) as expected_date,
        file_id
    from latest
),

final as (
    select
        btrim(entry_id) as entry_id,
        bank_account,
        entry_type,
        document_number,
        payment_reference,
        counterparty_name,
        amount,
        currency,
        expected_date,
        file_id
    from typed
)

select * from final
