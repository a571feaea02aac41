-- Everything reconciliation could not tie out, one row per item and reason, with a key that is
-- the same on every run (so a person's verdict from `bankflow recon resolve` stays attached):
--   missing_in_bank       a ledger entry or a Razorpay settlement no bank line pays
--   missing_in_ledger     a bank line on a reconciled account that no entry or settlement explains
--   amount_mismatch       a ledger entry whose reference is on a bank line with another amount
--   duplicate             a ledger entry keyed in twice (same account, document and amount)
--   settlement_sum_break  a settlement whose recon items do not add up to its amount
--   balance_break         a source's end-of-day balance that differs from the derived one, or a
--                         statement whose opening + entries is not its closing balance
--   stale_pending         a payment pending for longer than var pending_booking_max_days
with matched as not materialized (
    select * from {{ ref('int_recon_matched') }}
),

candidates as not materialized (
    select * from {{ ref('int_recon_candidates') }}
),

lines as not materialized (
    select * from {{ ref('int_recon_bank_lines') }}
),

entries as not materialized (
    select * from {{ ref('int_recon_ledger_entries') }}
),

settlements as (
    select * from {{ ref('stg_razorpay__settlements') }}
    where status = 'processed'
),

recon_items as (
    select * from {{ ref('stg_razorpay__settlement_recon_items') }}
),

balance_checks as (
    select * from {{ ref('recon_balance_checks') }}
),

statement_checks as (
    select * from {{ ref('stg_files__statement_checks') }}
),

source_accounts as (
    select * from {{ ref('int_accounts_unified') }}
),

transactions as (
    select * from {{ ref('fct_transactions') }}
),

resolutions as (
    select * from {{ ref('stg_ops__recon_resolutions') }}
),

matched_lines as (
    select distinct transaction_key from matched
),

matched_counterparts as (
    select distinct counterpart_key from matched
),

-- Where the gateway pays out: the account most settlements matched on (for exceptions of
-- settlements no bank line pays).
settlement_account as (
    select account_key
    from matched
    where counterpart_kind = 'settlement'
    group by account_key
    order by count(*) desc, account_key
    limit 1
),

reconciled_accounts as (
    select * from {{ ref('int_recon_accounts') }}
),

open_entries as (
    select entries.*
    from entries
    where not entries.is_duplicate
        and not exists (
            select 1 from matched_counterparts
            where matched_counterparts.counterpart_key = 'ledger:' || entries.entry_id
        )
),

-- An open entry whose reference sits on an open bank line with another amount: the closest one.
mismatches as (
    select distinct on (candidates.counterpart_key)
        candidates.counterpart_key,
        candidates.transaction_key,
        candidates.bank_amount,
        candidates.counterpart_amount,
        candidates.explanation
    from candidates
    where not candidates.within_tolerance
        and candidates.counterpart_kind = 'ledger'
        and not exists (
            select 1 from matched_lines where matched_lines.transaction_key = candidates.transaction_key
        )
        and candidates.counterpart_key in (select 'ledger:' || entry_id from open_entries)
    order by candidates.counterpart_key, candidates.priority, abs(candidates.amount_difference), candidates.transaction_key
),

ledger_exceptions as (
    select
        case when mismatches.counterpart_key is not null then 'amount_mismatch' else 'missing_in_bank' end as reason,
        'ledger_entry' as item_kind,
        open_entries.entry_id as item_key,
        open_entries.account_key,
        open_entries.expected_date as item_date,
        open_entries.amount,
        open_entries.currency,
        mismatches.transaction_key as related_key,
        case
            when mismatches.counterpart_key is not null
                then coalesce(open_entries.entry_type, 'entry') || ' ' || open_entries.document_number || ' expects '
                    || open_entries.amount || ' ' || open_entries.currency || ' but the bank line carrying its reference has '
                    || mismatches.bank_amount
            when open_entries.account_key is null
                then coalesce(open_entries.entry_type, 'entry') || ' ' || open_entries.document_number
                    || ' books against account ' || coalesce(open_entries.bank_account, '(none)')
                    || ', which no connected source reports'
            else coalesce(open_entries.entry_type, 'entry') || ' ' || open_entries.document_number || ' of '
                || coalesce(open_entries.counterparty_name, '(no name)') || ' for ' || open_entries.amount || ' ' || open_entries.currency
                || ' expected on ' || open_entries.expected_date || ': no bank line pays it'
        end as details
    from open_entries
    left join mismatches on mismatches.counterpart_key = 'ledger:' || open_entries.entry_id
),

duplicate_exceptions as (
    select
        'duplicate' as reason,
        'ledger_entry' as item_kind,
        entry_id as item_key,
        account_key,
        expected_date as item_date,
        amount,
        currency,
        duplicate_of_entry_id as related_key,
        coalesce(entry_type, 'entry') || ' ' || document_number || ' for ' || amount || ' ' || currency
            || ' is keyed in twice: ' || duplicate_of_entry_id || ' is the one reconciled' as details
    from entries
    where is_duplicate
),

bank_exceptions as (
    select
        'missing_in_ledger' as reason,
        'bank_line' as item_kind,
        lines.transaction_key as item_key,
        lines.account_key,
        lines.booking_date as item_date,
        lines.amount,
        lines.currency,
        cast(null as text) as related_key,
        'bank line ' || coalesce(lines.description, '') || ' for ' || lines.amount || ' ' || lines.currency
            || ' on ' || lines.booking_date || ': no ledger entry or settlement explains it' as details
    from lines
    inner join reconciled_accounts on reconciled_accounts.account_key = lines.account_key
    where lines.booking_date >= reconciled_accounts.reconciled_from
        and not exists (select 1 from matched_lines where matched_lines.transaction_key = lines.transaction_key)
        and not exists (select 1 from mismatches where mismatches.transaction_key = lines.transaction_key)
),

settlement_sums as (
    select settlement_id, sum(net_amount) as items_net, count(*) as item_count
    from recon_items
    group by settlement_id
),

settlement_exceptions as (
    select
        'missing_in_bank' as reason,
        'settlement' as item_kind,
        settlements.settlement_id as item_key,
        (select account_key from settlement_account) as account_key,
        settlements.created_date as item_date,
        settlements.amount,
        settlements.currency,
        settlements.utr as related_key,
        'Razorpay settlement ' || settlements.settlement_id || ' of ' || settlements.amount || ' '
            || settlements.currency || ' (UTR ' || coalesce(settlements.utr, 'none') || ') on '
            || settlements.created_date || ': no bank credit carries it' as details
    from settlements
    where not exists (
        select 1 from matched_counterparts
        where matched_counterparts.counterpart_key = 'razorpay:' || settlements.settlement_id
    )
    union all
    select
        'settlement_sum_break',
        'settlement',
        settlements.settlement_id,
        (select account_key from settlement_account),
        settlements.created_date,
        settlements.amount - coalesce(settlement_sums.items_net, 0),
        settlements.currency,
        settlements.utr,
        'Razorpay settlement ' || settlements.settlement_id || ' pays ' || settlements.amount || ' but its '
            || coalesce(settlement_sums.item_count, 0) || ' recon items net '
            || coalesce(settlement_sums.items_net, 0) || ' (credit - debit, fees and tax taken)'
    from settlements
    left join settlement_sums on settlement_sums.settlement_id = settlements.settlement_id
    where settlement_sums.items_net is distinct from settlements.amount
),

balance_exceptions as (
    select
        'balance_break' as reason,
        'balance_report' as item_kind,
        account_key || ':' || balance_date || ':' || source as item_key,
        account_key,
        balance_date as item_date,
        balance_difference as amount,
        currency,
        source as related_key,
        'on ' || balance_date || ' ' || source || ' reports ' || reported_balance || ' ' || currency
            || ' at the end of the day but the bookings bankflow holds give ' || derived_balance || ': '
            || balance_difference || ' unexplained' as details
    from balance_checks
    where check_status = 'break'
),

-- A statement that does not add up on its own: its opening balance plus its booked entries is not
-- its closing balance (an entry the file lacks, or a misprinted balance).
statement_breaks as (
    select
        'balance_break' as reason,
        'statement' as item_kind,
        statement_checks.statement_check_key as item_key,
        source_accounts.account_key,
        coalesce(statement_checks.period_end, statement_checks.period_start, cast(statement_checks.fetched_at as date))
            as item_date,
        statement_checks.balance_difference as amount,
        statement_checks.currency,
        statement_checks.file_id as related_key,
        statement_checks.source || ' statement ' || coalesce(statement_checks.statement_id, '(no id)')
            || ' opens at ' || statement_checks.opening_balance || ' and books ' || statement_checks.entries_total
            || ' in ' || statement_checks.entry_count || ' entries, which gives '
            || (statement_checks.opening_balance + statement_checks.entries_total) || ', but it closes at '
            || statement_checks.closing_balance || ' ' || statement_checks.currency as details
    from statement_checks
    left join source_accounts
        on source_accounts.source = statement_checks.source
        and source_accounts.account_ref = statement_checks.account_ref
    where statement_checks.check_status = 'mismatch'
),

stale_pending as (
    select
        'stale_pending' as reason,
        'bank_line' as item_kind,
        transaction_key as item_key,
        account_key,
        booking_date as item_date,
        amount,
        currency,
        cast(null as text) as related_key,
        'pending since ' || booking_date || ' (' || coalesce(description, '') || '), longer than the '
            || {{ var('pending_booking_max_days') }} || ' days a payment takes to book' as details
    from transactions
    where status = 'pending' and booking_date < current_date - {{ var('pending_booking_max_days') }}
),

all_exceptions as (
    select * from ledger_exceptions
    union all
    select * from duplicate_exceptions
    union all
    select * from bank_exceptions
    union all
    select * from settlement_exceptions
    union all
    select * from balance_exceptions
    union all
    select * from statement_breaks
    union all
    select * from stale_pending
),

final as (
    select
        {{ surrogate_key(['all_exceptions.reason', 'all_exceptions.item_kind', 'all_exceptions.item_key']) }}
            as exception_key,
        all_exceptions.reason,
        all_exceptions.item_kind,
        all_exceptions.item_key,
        all_exceptions.account_key,
        all_exceptions.item_date,
        all_exceptions.amount,
        all_exceptions.currency,
        all_exceptions.related_key,
        all_exceptions.details,
        greatest(current_date - all_exceptions.item_date, 0) as age_days,
        case
            when current_date - all_exceptions.item_date <= 2 then '0-2 days'
            when current_date - all_exceptions.item_date <= 7 then '3-7 days'
            when current_date - all_exceptions.item_date <= 30 then '8-30 days'
            else 'over 30 days'
        end as age_bucket,
        resolutions.resolution_status,
        resolutions.resolution_note,
        resolutions.resolved_at,
        resolutions.exception_key is null as is_open
    from all_exceptions
    left join resolutions
        on resolutions.exception_key
        = {{ surrogate_key(['all_exceptions.reason', 'all_exceptions.item_kind', 'all_exceptions.item_key']) }}
)

select * from final
