-- Spend is money out on booked rows of a spending category, in the reporting currency; internal
-- transfers, the income tree and the transfer category are not spend (macro cash_flow_kind).
-- Money back into a spending category (a merchant refund the categoriser put there) lowers that
-- category's spend: net_spend = gross_spend - refunded_amount. A refund only known as `refunds`
-- (the income tree) is income, because the purchase it undoes is unknown.
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
        monthly.category,
        categories.parent_category,
        monthly.is_inflow,
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

spend as (
    select
        owner,
        owner_name,
        month_start_date,
        category,
        parent_category,
        -amount_reporting as spend_amount,
        is_inflow,
        transaction_count,
        unconverted_count
    from classified
    where cash_flow_kind = 'spend'
),

per_month as (
    select
        owner,
        owner_name,
        month_start_date,
        category,
        max(parent_category) as parent_category,
        coalesce(sum(spend_amount) filter (where not is_inflow), 0) as gross_spend,
        coalesce(-sum(spend_amount) filter (where is_inflow), 0) as refunded_amount,
        coalesce(sum(spend_amount), 0) as net_spend,
        cast(sum(transaction_count) as bigint) as transaction_count,
        cast(sum(unconverted_count) as bigint) as unconverted_count
    from spend
    group by owner, owner_name, month_start_date, category
),

final as (
    select
        {{ surrogate_key(['owner', 'owner_name', 'month_start_date', 'category']) }} as spend_month_key,
        owner,
        owner_name,
        month_start_date,
        category,
        parent_category,
        '{{ var("reporting_currency") }}' as reporting_currency,
        gross_spend,
        refunded_amount,
        net_spend,
        transaction_count,
        unconverted_count
    from per_month
)

select * from final
