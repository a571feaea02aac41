{{ changed_periods_config('day', 'booking_date') }}

-- Kept by day from fct_transactions' change log (macros/changed_periods.sql): the daily balances
-- walk these sums instead of scanning every transaction on each run.
with transactions as (
    {{ fct_transactions_in_changed_periods() }}
),

booked as (
    select * from transactions
    where status = 'booked'
),

final as (
    select
        {{ surrogate_key(['account_key', 'booking_date']) }} as account_booking_day_key,
        account_key,
        booking_date,
        sum(amount) as booked_amount,
        count(*) as transaction_count
    from booked
    group by account_key, booking_date
)

select * from final
