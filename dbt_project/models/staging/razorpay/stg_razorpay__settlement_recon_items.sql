with source as (
    select * from {{ source('razorpay', 'settlement_recon') }}
),

typed as (
    select
        raw_id,
        record_key,
        account_ref,
        partition_key,
        payload ->> 'settlement_id' as settlement_id,
        payload ->> 'settlement_utr' as settlement_utr,
        payload ->> 'entity_id' as entity_id,
        payload ->> 'type' as item_type,
        payload ->> 'payment_id' as payment_id,
        upper(payload ->> 'currency') as currency,
        {{ paise_to_rupees("payload ->> 'amount'") }} as amount,
        {{ paise_to_rupees("payload ->> 'credit'") }} as credit,
        {{ paise_to_rupees("payload ->> 'debit'") }} as debit,
        {{ paise_to_rupees("payload ->> 'fee'") }} as fee,
        {{ paise_to_rupees("payload ->> 'tax'") }} as tax,
        case jsonb_typeof(payload -> 'on_hold') when 'boolean' then (payload ->> 'on_hold')::boolean end as is_on_hold,
        case jsonb_typeof(payload -> 'settled') when 'boolean' then (payload ->> 'settled')::boolean end as is_settled,
        payload ->> 'credit_type' as credit_type,
        {{ unix_timestamp("payload ->> 'created_at'") }} as created_at,
        {{ unix_timestamp("payload ->> 'settled_at'") }} as settled_at,
        {{ unix_timestamp("payload ->> 'posted_at'") }} as posted_at,
        payload ->> 'description' as description,
        {{ razorpay_notes("payload -> 'notes'") }} as notes,
        {{ razorpay_notes_text("payload -> 'notes'") }} as notes_text,
        payload ->> 'order_id' as order_id,
        payload ->> 'order_receipt' as order_receipt,
        payload ->> 'method' as method,
        payload ->> 'card_network' as card_network,
        payload ->> 'card_issuer' as card_issuer,
        payload ->> 'card_type' as card_type,
        payload ->> 'dispute_id' as dispute_id,
        fetched_at
    from source
),

deduplicated as (
    {{ deduplicate('typed', 'record_key', 'fetched_at desc, raw_id desc') }}
),

final as (
    select
        record_key as recon_item_key,
        'razorpay' as source,
        account_ref as merchant_ref,
        settlement_id,
        settlement_utr,
        entity_id,
        item_type,
        payment_id,
        -- The payment an item is about: itself for a payment, the refunded/transferred one otherwise.
        case when item_type = 'payment' then entity_id else payment_id end as related_payment_id,
        currency,
        amount,
        credit,
        debit,
        credit - debit as net_amount,
        fee,
        tax,
        is_on_hold,
        is_settled,
        credit_type,
        created_at,
        settled_at,
        posted_at,
        {{ json_date('partition_key') }} as settled_date,
        description,
        notes,
        notes_text,
        order_id,
        order_receipt,
        method,
        card_network,
        card_issuer,
        card_type,
        dispute_id,
        fetched_at
    from deduplicated
)

select * from final
