{{ incremental_staging_config('revolut', 'transactions') }}

with {{ revolut_legs('transactions') }},

latest as (
    -- The latest fetch of a transaction wins before the state filter (see stg_revolut__transactions).
    {{ deduplicate('legs', 'account_ref, record_key, leg_id', 'fetched_at desc, raw_id desc') }}
),

deduplicated as (
    -- A leg's fee is charged on top of its amount (the balance moves by amount - fee): one
    -- booked row per non-zero fee, so amounts stay additive across both models.
    select * from latest
    where state = 'completed' and fee <> 0
),

final as (
    select
        {{ surrogate_key(["'revolut'", 'account_ref', "'fee'", 'record_key', 'leg_id']) }} as transaction_key,
        'revolut' as source,
        account_ref,
        record_key as source_transaction_id,
        leg_id as entry_reference,
        cast(null as text) as end_to_end_id,
        'booked' as status,
        cast(completed_at at time zone 'UTC' as date) as booking_date,
        cast(null as date) as value_date,
        completed_at as booked_at,
        -fee as amount,
        currency,
        cast('Revolut' as text) as counterparty_name,
        cast(null as text) as counterparty_iban,
        cast(null as text) as merchant_name,
        cast(null as text) as mcc,
        'Fee: ' || coalesce(description, transaction_type_code) as description,
        'DEBIT' as transaction_type,
        cast('fee' as text) as bank_transaction_code,
        cast(null as text) as provider_category,
        cast(null as text) as provider_subcategory,
        balance_after,
        record_key as raw_record_key,
        partition_key as raw_partition_key,
        fetched_at
    from deduplicated
)

select * from final
