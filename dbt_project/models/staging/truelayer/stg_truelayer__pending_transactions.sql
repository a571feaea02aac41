with source as (
    select * from {{ source('truelayer', 'pending_transactions') }}
),

typed as (
    select
        raw_id,
        record_key,
        account_ref,
        -- A pending row has no posting yet: its date is the day the payment was made.
        cast(partition_key as date) as transaction_date,
        {{ json_timestamp("payload ->> 'timestamp'") }} as transacted_at,
        cast(payload ->> 'amount' as numeric) as amount,
        upper(payload ->> 'currency') as currency,
        payload -> 'meta' ->> 'bank_transaction_id' as entry_reference,
        payload ->> 'description' as description,
        nullif(payload ->> 'merchant_name', '') as merchant_name,
        payload -> 'meta' ->> 'counter_party_preferred_name' as counterparty_name,
        payload ->> 'transaction_type' as transaction_type,
        payload ->> 'transaction_category' as bank_transaction_code,
        payload -> 'transaction_classification' ->> 0 as provider_category,
        payload -> 'transaction_classification' ->> 1 as provider_subcategory,
        fetched_at
    from source
),

deduplicated as (
    {{ deduplicate('typed', 'account_ref, record_key', 'fetched_at desc, raw_id desc') }}
),

final as (
    select
        {{ surrogate_key(["'truelayer'", 'account_ref', "'pending'", 'record_key']) }} as transaction_key,
        'truelayer' as source,
        account_ref,
        record_key as source_transaction_id,
        entry_reference,
        cast(null as text) as end_to_end_id,
        'pending' as status,
        transaction_date as booking_date,
        cast(null as date) as value_date,
        transacted_at as booked_at,
        amount,
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
        cast(null as numeric) as balance_after,
        record_key as raw_record_key,
        fetched_at
    from deduplicated
)

select * from final
