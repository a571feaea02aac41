{{ incremental_staging_config('rest', 'transactions') }}

with source as (
    {{ restaged_landings('rest', 'transactions') }}
),

typed as (
    select
        raw_id,
        source,
        account_ref,
        record_key,
        payload ->> 'status' as bank_status,
        -- The connector writes the timestamp with the bank's own offset: its first ten characters
        -- are the bank-local booking date (contract §11), the same day the row is partitioned on.
        {{ json_date("left(payload ->> 'timestamp', 10)") }} as booking_date,
        {{ json_timestamp("payload ->> 'timestamp'") }} as booked_at,
        -- ->> gives the JSON number's own text: the cast is exact.
        cast(payload ->> 'amount' as numeric) as amount,
        upper(payload ->> 'currency') as currency,
        payload ->> 'channel' as channel,
        payload ->> 'transaction_type' as seed_transaction_type,
        payload ->> 'reference_number' as reference_number,
        payload ->> 'description' as description,
        partition_key,
        fetched_at
    from source
),

latest as (
    -- A transaction can be landed twice (pending on the day it was made, booked on a later
    -- day): the latest fetch wins, before the status filter, so FAILED/REVERSED override too.
    {{ deduplicate('typed', 'source, account_ref, record_key', 'fetched_at desc, raw_id desc') }}
),

deduplicated as (
    -- FAILED and REVERSED never moved money: landed in raw, not staged.
    select * from latest
    where bank_status in ('SUCCESS', 'PENDING')
),

final as (
    select
        {{ surrogate_key(['source', 'account_ref', 'bank_status', 'record_key']) }} as transaction_key,
        source,
        account_ref,
        record_key as source_transaction_id,
        cast(null as text) as entry_reference,
        -- The UTR / RRN: the interbank reference both ends of the payment see (what settlement
        -- reconciliation matches a gateway payout on).
        reference_number as end_to_end_id,
        case bank_status when 'SUCCESS' then 'booked' else 'pending' end as status,
        booking_date,
        cast(null as date) as value_date,
        booked_at,
        amount,
        currency,
        cast(null as text) as counterparty_name,
        cast(null as text) as counterparty_iban,
        cast(null as text) as merchant_name,
        cast(null as text) as mcc,
        description,
        case when amount < 0 then 'DEBIT' else 'CREDIT' end as transaction_type,
        channel as bank_transaction_code,
        seed_transaction_type as provider_category,
        cast(null as text) as provider_subcategory,
        cast(null as numeric) as balance_after,
        record_key as raw_record_key,
        partition_key as raw_partition_key,
        fetched_at
    from deduplicated
)

select * from final
