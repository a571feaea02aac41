-- Spend is money out on booked rows of a spending category, in the reporting currency; internal
-- transfers, the income tree and the transfer category are not spend (macro cash_flow_kind).
-- Money back into a spending category (a merchant refund the categoriser put there) lowers that
-- category's spend: net_spend = gross_spend - refunded_amount. A refund only known as `refunds`
-- (the income tree) is income, because the purchase it undoes is unknown.
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
        transactions.category,
        categories.parent_category,
        transactions.amount,
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

spend as (
    select
        owner_name,
        month_start_date,
        category,
        parent_category,
        -amount_reporting as spend_amount,
        amount
    from classified
    where cash_flow_kind = 'spend'
),

per_month as (
    select
        owner_name,
        month_start_date,
        category,
        max(parent_category) as parent_category,
        coalesce(sum(spend_amount) filter (where amount < 0), 0) as gross_spend,
        coalesce(-sum(spend_amount) filter (where amount >= 0), 0) as refunded_amount,
        coalesce(sum(spend_amount), 0) as net_spend,
        count(*) as transaction_count,
        count(*) filter (where spend_amount is null) as unconverted_count
    from spend
    group by owner_name, month_start_date, category
),

final as (
    select
        {{ surrogate_key(['owner_name', 'month_start_date', 'category']) }} as spend_month_key,
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
