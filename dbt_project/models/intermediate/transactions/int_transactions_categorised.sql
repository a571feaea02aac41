{#- Every row's category: layers 1-4 (int_transactions_rule_categorised) where one decided, else
    the learned model's prediction (layer 5, ops.category_predictions, written by the
    category_predictions Python asset, which trains on layers 1-3) when it was confident enough,
    else 'uncategorised'. A prediction for a row a layer 1-4 has since decided (a new override or
    rule) is simply outranked, so stale predictions never win.
    `bankflow rules backtest` compiles this model with var category_layers_relation naming its
    own layers 1-4 result; ref() is called either way so that the dependency always stands. -#}
{%- set current_layers = ref('int_transactions_rule_categorised') -%}
{%- set layers_relation = var('category_layers_relation', none) or current_layers -%}

with rule_categorised as (
    select * from {{ layers_relation }}
),

predictions as (
    select * from {{ ref('stg_ops__category_predictions') }}
),

-- Below the asset's confidence threshold the prediction is 'uncategorised': not a decision.
confident_predictions as (
    select
        transaction_key,
        category,
        confidence
    from predictions
    where category <> 'uncategorised'
),

final as (
    select
        rule_categorised.transaction_key,
        case
            when rule_categorised.category_source is null and confident_predictions.category is not null
                then confident_predictions.category
            else rule_categorised.category
        end as category,
        case
            when rule_categorised.category_source is not null then rule_categorised.category_source
            when confident_predictions.category is not null then 'model'
        end as category_source,
        rule_categorised.rule_id,
        case
            when rule_categorised.category_source is null then confident_predictions.confidence
        end as model_confidence
    from rule_categorised
    left join confident_predictions
        on rule_categorised.transaction_key = confident_predictions.transaction_key
)

select * from final
