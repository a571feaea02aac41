-- Where a balance break comes from. fct_account_balances_daily walks each account's level from
-- its latest report (the anchor) by the booked day sums, so the difference between the bank's
-- reported balance and the derived one is constant from report to report until a missing,
-- doubled or late movement lies between two reports: the difference changes exactly across the
-- days that hold it. One row per such step, the window between the two reports, which the
-- balance-gap sensor asks the account's sources for again (ops.recon_refetch_requests).
-- Only end-of-day reports locate a gap: a statement's closing balance, or a snapshot taken in the
-- last hour of its day (UTC). A snapshot taken during the day lacks that day's later bookings, so
-- its difference moves every day without anything missing.
with balances as (
    select * from {{ ref('fct_account_balances_daily') }}
),

accounts as (
    select * from {{ ref('dim_accounts') }}
),

reports as (
    select
        account_key,
        balance_date,
        currency,
        balance_difference,
        reported_source,
        lead(balance_date) over reports_in_order as next_report_date,
        lead(balance_difference) over reports_in_order as next_difference,
        lead(reported_source) over reports_in_order as next_reported_source
    from balances
    where reported_balance is not null
        and {{ is_end_of_day_report('reported_at', 'balance_date') }}
    window reports_in_order as (partition by account_key order by balance_date)
),

steps as (
    select *
    from reports
    where next_report_date is not null
        and next_difference <> balance_difference
),

final as (
    select
        steps.account_key || ':' || (steps.balance_date + 1) || ':' || steps.next_report_date as balance_gap_key,
        steps.account_key,
        accounts.sources,
        steps.balance_date + 1 as gap_first_day,
        steps.next_report_date as gap_last_day,
        steps.next_report_date - steps.balance_date as gap_days,
        -- The net amount of the movements bankflow lacks for those days: a missing credit is +,
        -- a missing debit -, a doubled movement the opposite of its amount.
        steps.next_difference - steps.balance_difference as unexplained_amount,
        steps.currency,
        steps.reported_source as report_before_source,
        steps.next_reported_source as report_after_source
    from steps
    inner join accounts on accounts.account_key = steps.account_key
)

select * from final
