with source as (
    select * from {{ source('rest', 'accounts') }}
),

typed as (
    select
        raw_id,
        source,
        account_ref,
        payload ->> 'account_number' as account_number,
        upper(payload ->> 'currency') as currency,
        payload ->> 'account_type' as account_type,
        payload ->> 'display_name' as display_name,
        payload ->> 'bank_name' as bank_name,
        -- A connector may map the holder to owner_name; else HDFC-style banks' customerName in the
        -- bank's own record. ICICI and SBI do not name the holder.
        coalesce(payload ->> 'owner_name', payload -> 'bank_record' ->> 'customerName') as owner_name,
        fetched_at
    from source
),

deduplicated as (
    {{ deduplicate('typed', 'source, account_ref', 'fetched_at desc, raw_id desc') }}
),

final as (
    select
        source,
        account_ref,
        -- Indian accounts have no IBAN (the IFSC branch code stays in raw as branch_code).
        cast(null as text) as iban,
        account_number,
        cast(null as text) as sort_code,
        cast(null as text) as swift_bic,
        currency,
        account_type,
        display_name,
        source as bank_provider_id,
        bank_name,
        owner_name,
        fetched_at
    from deduplicated
)

select * from final
