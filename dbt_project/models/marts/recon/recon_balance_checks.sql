-- Every balance a source reported, held against the balance bankflow derives from the bookings it
-- holds (fct_account_balances_daily walks each account from its latest report). Each source's
-- report of each day is checked, not only the day's latest: two sources reporting one account
-- (an API and a statement file, say) are both held to the same bookings, and the anchor's day is
-- checked against the other sources.
-- Only an end-of-day report can be checked: a statement's closing balance, or a snapshot taken in
-- the last hour of its day (UTC). A snapshot taken during the day lacks the day's later bookings:
-- it is listed as `intraday`, never reported as a break.
with reported as (
    select * from {{ ref('fct_balances') }}
    where current_balance is not null
),

daily as (
    select * from {{ ref('fct_account_balances_daily') }}
),

checked as (
    select
        reported.balance_key,
        reported.account_key,
        reported.balance_date,
        reported.source,
        reported.currency,
        reported.current_balance as reported_balance,
        reported.reported_at,
        daily.derived_balance,
        {{ is_end_of_day_report('reported.reported_at', 'reported.balance_date') }} as is_end_of_day
    from reported
    -- Every reported day is a day of the walk (it spans the account's reported days).
    inner join daily
        on daily.account_key = reported.account_key
        and daily.balance_date = reported.balance_date
),

final as (
    select
        balance_key as balance_check_key,
        account_key,
        balance_date,
        source,
        currency,
        reported_balance,
        reported_at,
        derived_balance,
        case when is_end_of_day then reported_balance - derived_balance end as balance_difference,
        case
            when not is_end_of_day then 'intraday'
            when reported_balance = derived_balance then 'agrees'
            else 'break'
        end as check_status
    from checked
)

select * from final
