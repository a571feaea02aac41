with source as (
    select * from {{ source('razorpay', 'settlements') }}
),

typed as (
    select
        raw_id,
        record_key,
        account_ref,
        payload ->> 'id' as settlement_id,
        payload ->> 'status' as status,
        {{ paise_to_rupees("payload ->> 'amount'") }} as amount,
        {{ paise_to_rupees("payload ->> 'fees'") }} as fees,
        {{ paise_to_rupees("payload ->> 'tax'") }} as tax,
        payload ->> 'utr' as utr,
        {{ unix_timestamp("payload ->> 'created_at'") }} as created_at,
        fetched_at
    from source
),

deduplicated as (
    {{ deduplicate('typed', 'settlement_id', 'fetched_at desc, raw_id desc') }}
),

final as (
    select
        settlement_id,
        'razorpay' as source,
        account_ref as merchant_ref,
        status,
        -- Razorpay settles in INR only; the settlement entity names no currency.
        'INR' as currency,
        amount,
        fees,
        tax,
        utr,
        created_at,
        (created_at at time zone 'Asia/Kolkata')::date as created_date,
        record_key as raw_record_key,
        fetched_at
    from deduplicated
)

select * from final
