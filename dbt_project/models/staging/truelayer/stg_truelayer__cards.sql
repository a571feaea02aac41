with source as (
    select * from {{ source('truelayer', 'cards') }}
),

typed as (
    select
        raw_id,
        account_ref,
        payload ->> 'card_type' as card_type,
        payload ->> 'display_name' as display_name,
        upper(payload ->> 'currency') as currency,
        payload ->> 'partial_card_number' as partial_card_number,
        payload -> 'provider' ->> 'provider_id' as bank_provider_id,
        payload -> 'provider' ->> 'display_name' as bank_name,
        -- The embossed name, in capitals.
        payload ->> 'name_on_card' as owner_name,
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
        -- Cards have no IBAN: the real account is the provider's card id.
        cast(null as text) as iban,
        partial_card_number as account_number,
        cast(null as text) as sort_code,
        cast(null as text) as swift_bic,
        currency,
        'CREDIT_CARD' as account_type,
        display_name,
        bank_provider_id,
        bank_name,
        owner_name,
        fetched_at
    from deduplicated
)

select * from final
