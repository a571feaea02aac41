-- The morning view per reconciled account and day (int_recon_accounts, from the day its
-- reconciliation starts): how much of the day's bank lines tied out and what is still open from
-- that day, by reason and by age. Exceptions without an account (an entry on an account no source
-- reports) are in recon_exceptions only.
with exceptions as (
    select * from {{ ref('recon_exceptions') }}
),

matches as (
    select * from {{ ref('recon_matches') }}
),

lines as (
    select * from {{ ref('int_recon_bank_lines') }}
),

reconciled_accounts as (
    select * from {{ ref('int_recon_accounts') }}
),

line_days as (
    select
        lines.account_key,
        lines.booking_date as summary_date,
        min(lines.currency) as currency,
        count(*) as bank_lines,
        count(*) filter (where matched.transaction_key is not null) as matched_lines,
        coalesce(sum(lines.amount) filter (where matched.transaction_key is not null), 0) as matched_amount,
        coalesce(sum(abs(lines.amount)) filter (where matched.transaction_key is null), 0) as unreconciled_amount
    from lines
    inner join reconciled_accounts
        on reconciled_accounts.account_key = lines.account_key
        and lines.booking_date >= reconciled_accounts.reconciled_from
    left join (select distinct transaction_key from matches) as matched
        on matched.transaction_key = lines.transaction_key
    group by lines.account_key, lines.booking_date
),

exception_days as (
    select
        account_key,
        item_date as summary_date,
        count(*) filter (where is_open) as open_exceptions,
        count(*) filter (where not is_open) as closed_exceptions,
        {%- for reason in ['missing_in_bank', 'missing_in_ledger', 'amount_mismatch', 'duplicate',
                           'settlement_sum_break', 'balance_break', 'stale_pending'] %}
        count(*) filter (where is_open and reason = '{{ reason }}') as {{ reason }}_count,
        {%- endfor %}
        {%- for bucket, column in [('0-2 days', 'open_0_2_days'), ('3-7 days', 'open_3_7_days'),
                                   ('8-30 days', 'open_8_30_days'), ('over 30 days', 'open_over_30_days')] %}
        count(*) filter (where is_open and age_bucket = '{{ bucket }}') as {{ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    from exceptions
    where account_key is not null
    group by account_key, item_date
),

final as (
    select
        {{ surrogate_key(['coalesce(line_days.account_key, exception_days.account_key)',
                          'coalesce(line_days.summary_date, exception_days.summary_date)']) }} as recon_day_key,
        coalesce(line_days.account_key, exception_days.account_key) as account_key,
        coalesce(line_days.summary_date, exception_days.summary_date) as summary_date,
        line_days.currency,
        coalesce(line_days.bank_lines, 0) as bank_lines,
        coalesce(line_days.matched_lines, 0) as matched_lines,
        round(line_days.matched_lines::numeric / nullif(line_days.bank_lines, 0), 4) as match_rate,
        coalesce(line_days.matched_amount, 0) as matched_amount,
        coalesce(line_days.unreconciled_amount, 0) as unreconciled_amount,
        coalesce(exception_days.open_exceptions, 0) as open_exceptions,
        coalesce(exception_days.closed_exceptions, 0) as closed_exceptions,
        {%- for reason in ['missing_in_bank', 'missing_in_ledger', 'amount_mismatch', 'duplicate',
                           'settlement_sum_break', 'balance_break', 'stale_pending'] %}
        coalesce(exception_days.{{ reason }}_count, 0) as {{ reason }}_count,
        {%- endfor %}
        {%- for column in ['open_0_2_days', 'open_3_7_days', 'open_8_30_days', 'open_over_30_days'] %}
        coalesce(exception_days.{{ column }}, 0) as {{ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    from line_days
    full outer join exception_days
        on exception_days.account_key = line_days.account_key
        and exception_days.summary_date = line_days.summary_date
)

select * from final
