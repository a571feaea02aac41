with source as (
    select * from {{ source('revolut', 'transactions') }}
),

accounts as (
    select distinct account_ref from {{ source('revolut', 'accounts') }}
),

legs as (
    -- One row per leg: an exchange or internal transfer is one transaction with two legs.
    -- Legs of connected accounts only; ->> gives a JSON number's own text, so casts are exact.
    select
        txn.raw_id,
        txn.record_key,
        txn.fetched_at,
        txn.payload ->> 'state' as state,
        txn.payload ->> 'type' as transaction_type_code,
        txn.payload ->> 'request_id' as request_id,
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
    where leg.value ->> 'account_id' in (select accounts.account_ref from accounts)
),

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
        fetched_at
    from deduplicated
)

select * from final
