with statements as (
    select * from {{ source('files', 'statements') }}
),

entries as (
    select * from {{ source('files', 'entries') }}
),

statement_accounts as (
    select
        raw_id,
        source,
        account_ref as file_account_id,
        payload ->> 'account_iban' as iban,
        payload ->> 'account_name' as display_name,
        payload ->> 'bank_bic' as swift_bic,
        -- The drop's bank (connectors/sftp `bank`): with the account number it identifies an
        -- account without an IBAN, the way its bank's API connector does.
        payload ->> 'bank' as bank_provider_id,
        -- camt.053 names the holder (Acct/Ownr); MT940, CSV, JSON and OFX statements do not.
        payload ->> 'account_owner' as owner_name,
        fetched_at
    from statements
),

latest_statement as (
    {{ deduplicate('statement_accounts', 'source, file_account_id', 'fetched_at desc, raw_id desc') }}
),

-- The currencies an account is reported in: a statement may not name its currency, its entries do
-- (and one IBAN can carry a statement per currency).
account_currencies as (
    select
        source,
        account_ref as file_account_id,
        upper(coalesce(payload ->> 'account_currency', payload ->> 'currency')) as currency,
        max(fetched_at) as fetched_at
    from entries
    group by 1, 2, 3
),

final as (
    select
        account_currencies.source,
        account_currencies.file_account_id || ':' || account_currencies.currency as account_ref,
        upper(replace(latest_statement.iban, ' ', '')) as iban,
        case when latest_statement.iban is null then account_currencies.file_account_id end as account_number,
        cast(null as text) as sort_code,
        latest_statement.swift_bic,
        account_currencies.currency,
        cast(null as text) as account_type,
        latest_statement.display_name,
        latest_statement.bank_provider_id,
        cast(null as text) as bank_name,
        latest_statement.owner_name,
        account_currencies.fetched_at
    from account_currencies
    left join latest_statement
        on account_currencies.source = latest_statement.source
        and account_currencies.file_account_id = latest_statement.file_account_id
)

select * from final
