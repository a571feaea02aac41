{{ changed_periods_config('month', 'month_start_date') }}

-- Kept by month from fct_transactions' change log (macros/changed_periods.sql), so the monthly
-- marts aggregate these totals instead of scanning every transaction on each run. Grouped by what
-- those marts classify on, so owners, the taxonomy and budgets can change without rebuilding it.
with transactions as (
    {{ fct_transactions_in_changed_periods() }}
),

per_month as (
    select
        account_key,
        cast(date_trunc('month', booking_date) as date) as month_start_date,
        status,
        currency,
        category,
        category_source,
        is_internal_transfer,
        amount >= 0 as is_inflow,
        sum(amount) as amount,
        sum(amount_reporting) as amount_reporting,
        count(*) as transaction_count,
        count(*) - count(amount_reporting) as unconverted_count
    from transactions
    group by 1, 2, 3, 4, 5, 6, 7, 8
),

final as (
    select
        {{ surrogate_key([
            'account_key', 'month_start_date', 'status', 'currency', 'category', 'category_source',
            'is_internal_transfer', 'is_inflow',
        ]) }} as transaction_month_key,
        *
    from per_month
)

select * from final
