{#- Layers 1-4 of the categorisation (override > rule > MCC > provider). The learned model
    (layer 5, the category_predictions Python asset) trains on these decisions and predicts the
    rows left undecided; int_transactions_categorised adds its predictions.
    A view over the kept matches of layers 2-4 (int_transactions_rule_matches), so a user's
    override (`bankflow categorise`) shows at once. `bankflow rules backtest` compiles this model
    with var category_matches_relation naming the matches of a changed rules file, so the
    precedence below is the only copy; ref() is called either way so that the dependency always
    stands. -#}
{%- set current_matches = ref('int_transactions_rule_matches') -%}
{%- set matches_relation = var('category_matches_relation', none) or current_matches -%}

with transactions as (
    select * from {{ ref('int_transactions_unioned') }}
),

overrides as (
    select * from {{ ref('int_category_overrides') }}
),

matches as (
    select * from {{ matches_relation }}
),

final as (
    select
        transactions.transaction_key,
        coalesce(
            overrides.category, matches.rule_category, matches.mcc_category, matches.provider_category,
            'uncategorised'
        ) as category,
        case
            when overrides.category is not null then 'override'
            when matches.rule_category is not null then 'rule'
            when matches.mcc_category is not null then 'mcc'
            when matches.provider_category is not null then 'provider'
        end as category_source,
        case when overrides.category is null then matches.rule_id end as rule_id
    from transactions
    left join overrides
        on transactions.transaction_key = overrides.transaction_key
    left join matches
        on transactions.transaction_key = matches.transaction_key
)

select * from final
