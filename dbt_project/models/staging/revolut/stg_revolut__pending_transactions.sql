with {{ revolut_legs('pending_transactions') }},

deduplicated as (
    {{ deduplicate('legs', 'account_ref, record_key, leg_id', 'fetched_at desc, raw_id desc') }}
),

final as (
    select
        {{ surrogate_key(["'revolut'", 'account_ref', "'pending'", 'record_key', 'leg_id']) }} as transaction_key,
        'revolut' as source,
        account_ref,
        record_key as source_transaction_id,
        leg_id as entry_reference,
        cast(null as text) as end_to_end_id,
        'pending' as status,
        -- Not booked yet: its date is the UTC day the payment was made.
        cast(created_at at time zone 'UTC' as date) as booking_date,
        cast(null as date) as value_date,
        created_at as booked_at,
        amount,
        currency,
        merchant_name as counterparty_name,
        cast(null as text) as counterparty_iban,
        merchant_name,
        mcc,
        description,
        case when amount < 0 then 'DEBIT' else 'CREDIT' end as transaction_type,
        transaction_type_code as bank_transaction_code,
        cast(null as text) as provider_category,
        cast(null as text) as provider_subcategory,
        cast(null as numeric) as balance_after,
        record_key as raw_record_key,
        partition_key as raw_partition_key,
        fetched_at
    from deduplicated
)

select * from final
