{#- Layers 2-4 of the categorisation, looked up once per row and kept: the rule, MCC and provider
    category each row matches (int_transactions_rule_categorised puts them in precedence under the
    user's overrides). Matching every row against every rule's regular expression is the costly
    part of categorising, so an incremental run matches only the rows int_transactions_unioned
    rebuilt (the window, the days rows were restaged onto, the pending rows); older rows keep the
    rules they were matched with until a full refresh (see `bankflow rules backtest`).
    With var category_rules_relation (the backtest, or a test's reduced rules) it matches every row
    against that table of rules instead of the seed. ref() is called either way so that the
    dependency on the seed always stands. -#}
{{
    config(
        materialized='incremental',
        unique_key='transaction_key',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook="{{ serialize_builds() }}",
        post_hook="{{ analyze_full_build() }}",
        indexes=[{'columns': ['transaction_key']}],
    )
}}
{%- set current_rules = ref('category_rules') -%}
{%- set rules_changed = var('category_rules_relation', none) is not none -%}
{%- set rules_relation = var('category_rules_relation', none) or current_rules -%}

-- depends_on: {{ ref('int_transactions_rebuilt_days') }}
with transactions as (
    select * from {{ ref('int_transactions_unioned') }} as unioned
    {%- if is_incremental() and not rules_changed %}
    -- The rows int_transactions_unioned rebuilt this run: every row reaches it on a rebuilt day.
    where {{ on_rebuilt_days() }}
    {%- endif %}
),

rules as (
    select * from {{ rules_relation }}
),

mcc_codes as (
    select * from {{ ref('mcc_codes') }}
),

provider_map as (
    select * from {{ ref('provider_category_map') }}
),

directed as (
    select
        transaction_key,
        account_key,
        amount,
        merchant_name,
        description,
        counterparty_name,
        lpad(trim(mcc), 4, '0') as mcc,
        upper(provider_category) as provider_category,
        upper(provider_subcategory) as provider_subcategory,
        upper(bank_transaction_code) as bank_transaction_code,
        -- ISO 20022 Domain-Family-SubFamily codes (PMNT-CCRD-CWDL): the sub-family says what happened.
        case
            when bank_transaction_code ~ '^[A-Za-z]{4}-[A-Za-z]{4}-[A-Za-z]{4}$'
                then upper(split_part(bank_transaction_code, '-', 3))
        end as iso_subfamily,
        case when amount < 0 then 'out' else 'in' end as direction
    from transactions
),

-- One lookup per layer; each returns at most one decision per row.
layered as (
    select
        directed.transaction_key,
        rule_match.rule_id,
        rule_match.category as rule_category,
        mcc_codes.category as mcc_category,
        provider_match.category as provider_category
    from directed
    -- Highest priority first; among equal priorities the alphabetically first rule_id, so the
    -- outcome never depends on row order.
    left join lateral (
        select
            rules.rule_id,
            rules.category
        from rules
        where rules.amount_sign in ('any', directed.direction)
            and (rules.account_key is null or rules.account_key = directed.account_key)
            and (
                (rules.field in ('merchant', 'any') and directed.merchant_name ~* rules.pattern)
                or (rules.field in ('description', 'any') and directed.description ~* rules.pattern)
                or (rules.field in ('counterparty', 'any') and directed.counterparty_name ~* rules.pattern)
            )
        order by rules.priority desc, rules.rule_id
        limit 1
    ) as rule_match on true
    left join mcc_codes
        on directed.mcc = mcc_codes.mcc
    -- The most specific mapping wins: classification with its sub-level, the classification alone,
    -- the transaction kind, the ISO sub-family; a signed mapping before an `any` one.
    left join lateral (
        select provider_map.category
        from provider_map
        where provider_map.amount_sign in ('any', directed.direction)
            and (
                (
                    provider_map.field = 'provider_category'
                    and upper(provider_map.provider_value) = directed.provider_category
                    and (
                        provider_map.provider_subvalue is null
                        or upper(provider_map.provider_subvalue) = directed.provider_subcategory
                    )
                )
                or (
                    provider_map.field = 'bank_transaction_code'
                    and upper(provider_map.provider_value) = directed.bank_transaction_code
                )
                or (
                    provider_map.field = 'iso_subfamily'
                    and upper(provider_map.provider_value) = directed.iso_subfamily
                )
            )
        order by
            case provider_map.field
                when 'provider_category' then case when provider_map.provider_subvalue is null then 2 else 1 end
                when 'bank_transaction_code' then 3
                else 4
            end,
            case when provider_map.amount_sign = 'any' then 1 else 0 end,
            provider_map.provider_value
        limit 1
    ) as provider_match on true
),

final as (
    select
        transaction_key,
        rule_id,
        rule_category,
        mcc_category,
        provider_category
    from layered
)

select * from final
