-- Every booked movement of an owner's accounts in exactly one column (macro cash_flow_kind), in
-- the reporting currency, so that
--   net_cashflow = income - spend + transfers_in - transfers_out + other_transfers_in - other_transfers_out
-- is the month's whole change in the owner's money. Internal transfers cancel out in one currency;
-- across currencies what is left is the exchange and fee cost.
with monthly as (
    select * from {{ ref('fct_transactions_monthly') }}
),

accounts as (
    select * from {{ ref('dim_accounts') }}
),

categories as (
    select * from {{ ref('categories') }}
),

-- Monthly totals of one direction (money in or out), so their amount has the sign of each row's:
-- cash_flow_kind classifies them as it would each row.
classified as (
    select
        accounts.owner,
        {{ finance_owner_name('accounts.owner_name') }} as owner_name,
        monthly.month_start_date,
        monthly.amount_reporting,
        monthly.transaction_count,
        monthly.unconverted_count,
        {{ cash_flow_kind(
            'monthly.amount', 'monthly.is_internal_transfer', 'monthly.category',
            'categories.is_spend', 'categories.is_income',
        ) }} as cash_flow_kind
    from monthly
    inner join accounts on monthly.account_key = accounts.account_key
    left join categories on monthly.category = categories.category
    where monthly.status = 'booked'
),

per_month as (
    select
        owner,
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
        cast(sum(transaction_count) as bigint) as transaction_count,
        cast(sum(unconverted_count) as bigint) as unconverted_count
    from classified
    group by owner, owner_name, month_start_date
),

final as (
    select
        {{ surrogate_key(['owner', 'owner_name', 'month_start_date']) }} as cashflow_month_key,
        owner,
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
