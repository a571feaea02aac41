-- The books' side: each ledger entry with the bankflow account it books against (by IBAN, else
-- the bank's account number) and whether it is a second keying of an entry already there. The
-- books come from the ledger table, from export files, or both; an entry id in both is the
-- table's (the system of record).
with table_entries as (
    select * from {{ ref('stg_ledger__entries') }}
),

export_entries as (
    select * from {{ ref('stg_ledger__export_entries') }}
),

entries as (
    select
        entry_id, bank_account, entry_type, document_number, payment_reference, counterparty_name,
        amount, currency, expected_date, 'table' as ledger_source
    from table_entries
    union all
    select
        entry_id, bank_account, entry_type, document_number, payment_reference, counterparty_name,
        amount, currency, expected_date, file_id
    from export_entries
    where not exists (select 1 from table_entries where table_entries.entry_id = export_entries.entry_id)
),

accounts as (
    select * from {{ ref('dim_accounts') }}
),

account_by_identifier as (
    select upper(iban) as bank_account, account_key from accounts where iban is not null
    union
    select upper(provider_account_id), account_key from accounts where iban is null
),

-- The same document for the same amount and day on the same account entered twice: the first
-- entry (by id) is the entry, the others are duplicates to be cleaned up in the books, never
-- matched. (A monthly bill under one PO number, due each month, is not a duplicate.)
ranked as (
    select
        entries.*,
        row_number() over (
            partition by entries.bank_account, upper(entries.document_number), entries.amount, entries.expected_date
            order by entries.entry_id
        ) as keying,
        first_value(entries.entry_id) over (
            partition by entries.bank_account, upper(entries.document_number), entries.amount, entries.expected_date
            order by entries.entry_id
        ) as first_entry_id
    from entries
),

final as (
    select
        ranked.entry_id,
        account_by_identifier.account_key,
        ranked.bank_account,
        ranked.entry_type,
        ranked.document_number,
        ranked.payment_reference,
        {{ normalised_reference('ranked.payment_reference') }} as payment_reference_normalised,
        ranked.counterparty_name,
        {{ normalised_name('ranked.counterparty_name') }} as counterparty_name_normalised,
        ranked.amount,
        ranked.currency,
        ranked.expected_date,
        ranked.ledger_source,
        ranked.keying > 1 as is_duplicate,
        case when ranked.keying > 1 then ranked.first_entry_id end as duplicate_of_entry_id
    from ranked
    left join account_by_identifier on account_by_identifier.bank_account = ranked.bank_account
)

select * from final
