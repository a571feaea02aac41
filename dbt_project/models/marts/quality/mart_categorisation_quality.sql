-- From fct_transactions' monthly totals: the categories the marts show, without scanning every
-- transaction on each run.
with monthly as (
    select * from {{ ref('fct_transactions_monthly') }}
),

categories as (
    select * from {{ ref('categories') }}
),

per_category as (
    select
        category,
        currency,
        cast(sum(transaction_count) as bigint) as transaction_count,
        sum(amount) as amount,
        coalesce(sum(transaction_count) filter (where category_source = 'override'), 0) as override_count,
        coalesce(sum(transaction_count) filter (where category_source = 'rule'), 0) as rule_count,
        coalesce(sum(transaction_count) filter (where category_source = 'mcc'), 0) as mcc_count,
        coalesce(sum(transaction_count) filter (where category_source = 'provider'), 0) as provider_count,
        coalesce(sum(transaction_count) filter (where category_source = 'model'), 0) as model_count
    from monthly
    group by category, currency
),

final as (
    select
        {{ surrogate_key(['per_category.category', 'per_category.currency']) }} as category_currency_key,
        per_category.category,
        categories.parent_category,
        per_category.currency,
        per_category.transaction_count,
        round(
            per_category.transaction_count
            / sum(per_category.transaction_count) over (partition by per_category.currency),
            4
        ) as share_of_transactions,
        per_category.amount,
        round(per_category.override_count / per_category.transaction_count::numeric, 4) as share_by_override,
        round(per_category.rule_count / per_category.transaction_count::numeric, 4) as share_by_rule,
        round(per_category.mcc_count / per_category.transaction_count::numeric, 4) as share_by_mcc,
        round(per_category.provider_count / per_category.transaction_count::numeric, 4) as share_by_provider,
        round(per_category.model_count / per_category.transaction_count::numeric, 4) as share_by_model
    from per_category
    left join categories
        on per_category.category = categories.category
)

select * from final
