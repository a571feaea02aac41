with source as (
    select * from {{ source('razorpay', 'refunds') }}
),

typed as (
    select
        raw_id,
        record_key,
        account_ref,
        payload ->> 'id' as refund_id,
        payload ->> 'payment_id' as payment_id,
        upper(payload ->> 'currency') as currency,
        {{ paise_to_rupees("payload ->> 'amount'") }} as amount,
        payload ->> 'status' as status,
        payload ->> 'speed_requested' as speed_requested,
        payload ->> 'speed_processed' as speed_processed,
        payload ->> 'receipt' as receipt,
        payload ->> 'batch_id' as batch_id,
        payload -> 'acquirer_data' ->> 'arn' as acquirer_arn,
        {{ razorpay_notes("payload -> 'notes'") }} as notes,
        {{ razorpay_notes_text("payload -> 'notes'") }} as notes_text,
        {{ unix_timestamp("payload ->> 'created_at'") }} as created_at,
        fetched_at
    from source
),

deduplicated as (
    {{ deduplicate('typed', 'refund_id', 'fetched_at desc, raw_id desc') }}
),

final as (
    select
        refund_id,
        'razorpay' as source,
        account_ref as merchant_ref,
        payment_id,
        currency,
        amount,
        status,
        speed_requested,
        speed_processed,
        receipt,
        batch_id,
        acquirer_arn,
        notes,
        notes_text,
        created_at,
        (created_at at time zone 'Asia/Kolkata')::date as created_date,
        record_key as raw_record_key,
        fetched_at
    from deduplicated
)

select * from final
