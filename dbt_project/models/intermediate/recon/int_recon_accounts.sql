-- The accounts reconciliation answers for, and from which day: those the ledger books against
-- (from its first expected day: the books start there), else those Razorpay pays out to (from the
-- first settlement credit). recon_exceptions reports their unexplained lines, recon_summary
-- counts their days.
with entries as not materialized (
    select * from {{ ref('int_recon_ledger_entries') }}
),

matched as (
    select * from {{ ref('int_recon_matched') }}
),

lines as (
    select * from {{ ref('int_recon_bank_lines') }}
),

ledger_accounts as (
    select account_key, min(expected_date) as reconciled_from
    from entries
    where account_key is not null
    group by account_key
),

gateway_accounts as (
    select matched.account_key, min(lines.booking_date) as reconciled_from
    from matched
    inner join lines on lines.transaction_key = matched.transaction_key
    where matched.counterpart_kind = 'settlement'
        and not exists (select 1 from ledger_accounts where ledger_accounts.account_key = matched.account_key)
    group by matched.account_key
),

final as (
    select account_key, reconciled_from, 'ledger' as reconciled_against from ledger_accounts
    union all
    select account_key, reconciled_from, 'gateway' from gateway_accounts
)

select * from final
