{#- The staging model of one TrueLayer transactions table (booked or pending, account or card).

    Accounts send signed amounts (debits negative). Cards send purchases as positive amounts
    with type DEBIT and repayments as negative with type CREDIT (contract §3, §10), so card
    rows take their sign from transaction_type. -#}
{% macro truelayer_transactions_staging(source_table, status, card=false) %}
{%- if status == 'booked' %}{{ incremental_staging_config('truelayer', source_table) }}{% endif %}
with source as (
    {%- if status == 'booked' %}
    {{ restaged_landings('truelayer', source_table) }}
    {%- else %}
    select * from {{ source('truelayer', source_table) }}
    {%- endif %}
),

typed as (
    select
        raw_id,
        record_key,
        account_ref,
        -- Booked: the posting date; pending: the day the payment was made.
        cast(partition_key as date) as booking_date,
        {{ truelayer_transaction_fields() }},
        cast(payload -> 'running_balance' ->> 'amount' as numeric) as running_balance,
        partition_key,
        fetched_at
    from source
),

deduplicated as (
    -- The same identity can be landed twice if the bank moves a posting to another day:
    -- the latest fetch wins.
    {{ deduplicate('typed', 'account_ref, record_key', 'fetched_at desc, raw_id desc') }}
),

final as (
    select
        {{ surrogate_key(["'truelayer'", 'account_ref', "'" ~ status ~ "'", 'record_key']) }} as transaction_key,
        'truelayer' as source,
        account_ref,
        record_key as source_transaction_id,
        entry_reference,
        cast(null as text) as end_to_end_id,
        '{{ status }}' as status,
        booking_date,
        cast(null as date) as value_date,
        posted_at as booked_at,
        {% if card -%}
        case transaction_type when 'DEBIT' then -abs(amount) when 'CREDIT' then abs(amount) else -amount end as amount,
        {%- else -%}
        amount,
        {%- endif %}
        currency,
        counterparty_name,
        cast(null as text) as counterparty_iban,
        merchant_name,
        cast(null as text) as mcc,
        description,
        transaction_type,
        bank_transaction_code,
        provider_category,
        provider_subcategory,
        -- A card's running balance is what is owed: the account's balance is its negative.
        {{ '-running_balance' if card else 'running_balance' }} as balance_after,
        record_key as raw_record_key,
        partition_key as raw_partition_key,
        fetched_at
    from deduplicated
)

select * from final
{% endmacro %}
