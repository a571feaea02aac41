{#- The import CTEs every Revolut transaction model starts from: `source`, and `legs` — one
    row per leg (an exchange or internal transfer is one transaction with two legs). Legs of
    every account the payload names: which accounts are connected is the accounts source's
    business, joined in int_transactions_unioned. ->> gives a JSON number's own text, so the
    numeric casts are exact. -#}
{% macro revolut_legs(source_table) %}
source as (
    {%- if source_table == 'transactions' %}
    {{ restaged_landings('revolut', source_table) }}
    {%- else %}
    select * from {{ source('revolut', source_table) }}
    {%- endif %}
),

legs as (
    select
        txn.raw_id,
        txn.record_key,
        txn.partition_key,
        txn.fetched_at,
        txn.payload ->> 'state' as state,
        txn.payload ->> 'type' as transaction_type_code,
        {{ json_timestamp("txn.payload ->> 'created_at'") }} as created_at,
        {{ json_timestamp("txn.payload ->> 'completed_at'") }} as completed_at,
        txn.payload -> 'merchant' ->> 'name' as merchant_name,
        txn.payload -> 'merchant' ->> 'category_code' as mcc,
        leg.value ->> 'leg_id' as leg_id,
        leg.value ->> 'account_id' as account_ref,
        cast(leg.value ->> 'amount' as numeric) as amount,
        coalesce(cast(leg.value ->> 'fee' as numeric), 0) as fee,
        upper(leg.value ->> 'currency') as currency,
        leg.value ->> 'description' as description,
        cast(leg.value ->> 'balance' as numeric) as balance_after
    from source as txn
    cross join lateral jsonb_array_elements(txn.payload -> 'legs') as leg (value)
    -- A leg without account_id (the contract requires one) is on no account: raw keeps it.
    where leg.value ->> 'account_id' is not null
)
{% endmacro %}
