with source as (
    select * from {{ source('truelayer', 'accounts') }}
),

typed as (
    select
        raw_id,
        account_ref,
        payload ->> 'account_type' as account_type,
        payload ->> 'display_name' as display_name,
        upper(payload ->> 'currency') as currency,
        upper(replace(payload -> 'account_number' ->> 'iban', ' ', '')) as iban,
        payload -> 'account_number' ->> 'number' as account_number,
        payload -> 'account_number' ->> 'sort_code' as sort_code,
        payload -> 'account_number' ->> 'swift_bic' as swift_bic,
        payload -> 'provider' ->> 'provider_id' as bank_provider_id,
        payload -> 'provider' ->> 'display_name' as bank_name,
        fetched_at
    from source
),

deduplicated as (
    {{ deduplicate('typed', 'account_ref', 'fetched_at desc, raw_id desc') }}
),

final as (
    select
        'truelayer' as source,
        account_ref,
        nullif(iban, '') as iban,
        account_number,
        sort_code,
        swift_bic,
        currency,
        account_type,
        display_name,
        bank_provider_id,
        bank_name,
        -- The Data API's accounts do not name the holder.
        cast(null as text) as owner_name,
        fetched_at
    from deduplicated
)

select * from final
