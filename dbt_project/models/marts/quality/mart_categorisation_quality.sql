-- Read from the intermediate models, not fct_transactions: this unpartitioned table built after the
-- incremental fct would split Dagster's unpartitioned dbt step in two around it. The rows are the
-- same ones (fct_transactions holds every int_transactions_unioned row).
with transactions as (
    select * from {{ ref('int_transactions_unioned') }}
),

categorised as (
    select * from {{ ref('int_transactions_categorised') }}
),

categories as (
    select * from {{ ref('categories') }}
),

per_category as (
    select
        categorised.category,
        transactions.currency,
        count(*) as transaction_count,
        sum(transactions.amount) as amount,
        count(*) filter (where categorised.category_source = 'override') as override_count,
        count(*) filter (where categorised.category_source = 'rule') as rule_count,
        count(*) filter (where categorised.category_source = 'mcc') as mcc_count,
        count(*) filter (where categorised.category_source = 'provider') as provider_count,
        count(*) filter (where categorised.category_source = 'model') as model_count
    from transactions
    inner join categorised
        on transactions.transaction_key = categorised.transaction_key
    group by categorised.category, transactions.currency
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
