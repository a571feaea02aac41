-- Every booked movement of an owner's accounts in exactly one column (macro cash_flow_kind), in
-- the reporting currency, so that
--   net_cashflow = income - spend + transfers_in - transfers_out + other_transfers_in - other_transfers_out
-- is the month's whole change in the owner's money. Internal transfers cancel out in one currency;
-- across currencies what is left is the exchange and fee cost.
with transactions as (
    select * from {{ ref('fct_transactions') }}
),

accounts as (
    select * from {{ ref('dim_accounts') }}
),

categories as (
    select * from {{ ref('categories') }}
),

classified as (
    select
        {{ finance_owner_name('accounts.owner_name') }} as owner_name,
        cast(date_trunc('month', transactions.booking_date) as date) as month_start_date,
        transactions.amount_reporting,
        {{ cash_flow_kind(
            'transactions.amount', 'transactions.is_internal_transfer', 'transactions.category',
            'categories.is_spend', 'categories.is_income',
        ) }} as cash_flow_kind
    from transactions
    inner join accounts on transactions.account_key = accounts.account_key
    left join categories on transactions.category = categories.category
    where transactions.status = 'booked'
),

per_month as (
    select
        owner_name,
        month_start_date,
        coalesce(sum(amount_reporting) filter (where cash_flow_kind = 'income'), 0) as income,
        coalesce(-sum(amount_reporting) filter (where cash_flow_kind = 'spend'), 0) as spend,
        coalesce(sum(amount_reporting) filter (where cash_flow_kind = 'transfer_in'), 0) as transfers_in,
        coalesce(-sum(amount_reporting) filter (where cash_flow_kind = 'transfer_out'), 0) as transfers_out,
        coalesce(sum(amount_reporting) filter (where cash_flow_kind = 'other_transfer_in'), 0)
            as other_transfers_in,
        coalesce(-sum(amount_reporting) filter (where cash_flow_kind = 'other_transfer_out'), 0)
            as other_transfers_out,
        coalesce(sum(amount_reporting), 0) as net_cashflow,
        count(*) as transaction_count,
        count(*) filter (where amount_reporting is null) as unconverted_count
    from classified
    group by owner_name, month_start_date
),

final as (
    select
        {{ surrogate_key(['owner_name', 'month_start_date']) }} as cashflow_month_key,
        owner_name,
        month_start_date,
        '{{ var("reporting_currency") }}' as reporting_currency,
        income,
        spend,
        transfers_in,
        transfers_out,
        other_transfers_in,
        other_transfers_out,
        net_cashflow,
        transaction_count,
        unconverted_count
    from per_month
)

select * from final
