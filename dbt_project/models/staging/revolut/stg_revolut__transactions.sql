{{ incremental_staging_config('revolut', 'transactions') }}

with {{ revolut_legs('transactions') }},

latest as (
    -- A transaction can be landed twice if its completed_at moves to another day: the latest
    -- fetch wins, before the state filter, so a later "reverted" overrides an earlier "completed".
    {{ deduplicate('legs', 'account_ref, record_key, leg_id', 'fetched_at desc, raw_id desc') }}
),

deduplicated as (
    -- declined, failed and reverted transactions never moved money: landed in raw, not staged.
    select * from latest
    where state = 'completed'
),

final as (
    select
        {{ surrogate_key(["'revolut'", 'account_ref', "'booked'", 'record_key', 'leg_id']) }} as transaction_key,
        'revolut' as source,
        account_ref,
        record_key as source_transaction_id,
        leg_id as entry_reference,
        cast(null as text) as end_to_end_id,
        'booked' as status,
        cast(completed_at at time zone 'UTC' as date) as booking_date,
        cast(null as date) as value_date,
        completed_at as booked_at,
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
        balance_after,
        record_key as raw_record_key,
        partition_key as raw_partition_key,
        fetched_at
    from deduplicated
)

select * from final
