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
        {{ truelayer_transaction_fields() }},
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
        posted_at as booked_at,
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
