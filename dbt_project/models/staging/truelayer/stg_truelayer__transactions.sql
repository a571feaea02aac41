with source as (
    select * from {{ source('truelayer', 'transactions') }}
),

typed as (
    select
        raw_id,
        record_key,
        account_ref,
        cast(partition_key as date) as booking_date,
        {{ truelayer_transaction_fields() }},
        cast(payload -> 'running_balance' ->> 'amount' as numeric) as balance_after,
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
        {{ surrogate_key(["'truelayer'", 'account_ref', "'booked'", 'record_key']) }} as transaction_key,
        'truelayer' as source,
        account_ref,
        record_key as source_transaction_id,
        entry_reference,
        cast(null as text) as end_to_end_id,
        'booked' as status,
        booking_date,
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
        balance_after,
        record_key as raw_record_key,
        fetched_at
    from deduplicated
)

select * from final
