with source as (
    select * from {{ source('razorpay', 'payments') }}
),

typed as (
    select
        raw_id,
        record_key,
        account_ref,
        payload ->> 'id' as payment_id,
        payload ->> 'status' as status,
        case jsonb_typeof(payload -> 'captured') when 'boolean' then (payload ->> 'captured')::boolean end as is_captured,
        payload ->> 'method' as method,
        case jsonb_typeof(payload -> 'international') when 'boolean' then (payload ->> 'international')::boolean end
            as is_international,
        upper(payload ->> 'currency') as currency,
        {{ paise_to_rupees("payload ->> 'amount'") }} as amount,
        {{ paise_to_rupees("payload ->> 'amount_refunded'") }} as amount_refunded,
        payload ->> 'refund_status' as refund_status,
        {{ paise_to_rupees("payload ->> 'fee'") }} as fee,
        {{ paise_to_rupees("payload ->> 'tax'") }} as tax,
        payload ->> 'order_id' as order_id,
        payload ->> 'invoice_id' as invoice_id,
        payload ->> 'customer_id' as customer_id,
        payload ->> 'description' as description,
        payload ->> 'bank' as bank,
        payload ->> 'wallet' as wallet,
        payload ->> 'card_id' as card_id,
        payload -> 'acquirer_data' ->> 'rrn' as acquirer_rrn,
        payload -> 'acquirer_data' ->> 'bank_transaction_id' as acquirer_bank_transaction_id,
        payload -> 'acquirer_data' ->> 'auth_code' as acquirer_auth_code,
        payload ->> 'error_code' as error_code,
        payload ->> 'error_reason' as error_reason,
        payload ->> 'error_description' as error_description,
        {{ razorpay_notes("payload -> 'notes'") }} as notes,
        {{ razorpay_notes_text("payload -> 'notes'") }} as notes_text,
        {{ unix_timestamp("payload ->> 'created_at'") }} as created_at,
        fetched_at
    from source
),

deduplicated as (
    {{ deduplicate('typed', 'payment_id', 'fetched_at desc, raw_id desc') }}
),

final as (
    select
        payment_id,
        'razorpay' as source,
        account_ref as merchant_ref,
        status,
        is_captured,
        method,
        is_international,
        currency,
        amount,
        amount_refunded,
        refund_status,
        fee,
        tax,
        order_id,
        invoice_id,
        customer_id,
        description,
        bank,
        wallet,
        card_id,
        acquirer_rrn,
        acquirer_bank_transaction_id,
        acquirer_auth_code,
        error_code,
        error_reason,
        error_description,
        notes,
        notes_text,
        created_at,
        -- Razorpay's business day (settlement cycles, the recon report) is the IST date.
        (created_at at time zone 'Asia/Kolkata')::date as created_date,
        record_key as raw_record_key,
        fetched_at
    from deduplicated
)

select * from final
