{#- The fields a TrueLayer transaction payload carries, booked or pending (contract §3), typed.
    ->> gives a JSON number's own text, so numeric casts are exact (no float on the way). -#}
{% macro truelayer_transaction_fields(payload='payload') -%}
    {{ json_timestamp(payload ~ " ->> 'timestamp'") }} as posted_at,
    cast({{ payload }} ->> 'amount' as numeric) as amount,
    upper({{ payload }} ->> 'currency') as currency,
    {{ payload }} -> 'meta' ->> 'bank_transaction_id' as entry_reference,
    {{ payload }} ->> 'description' as description,
    nullif({{ payload }} ->> 'merchant_name', '') as merchant_name,
    {{ payload }} -> 'meta' ->> 'counter_party_preferred_name' as counterparty_name,
    {{ payload }} ->> 'transaction_type' as transaction_type,
    {{ payload }} ->> 'transaction_category' as bank_transaction_code,
    {{ payload }} -> 'transaction_classification' ->> 0 as provider_category,
    {{ payload }} -> 'transaction_classification' ->> 1 as provider_subcategory
{%- endmacro %}
