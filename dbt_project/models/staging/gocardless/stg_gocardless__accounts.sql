with source as (
    select * from {{ source('gocardless', 'accounts') }}
),

typed as (
    select
        raw_id,
        account_ref,
        upper(replace(coalesce(payload -> 'account' ->> 'iban', payload -> 'metadata' ->> 'iban'), ' ', ''))
            as iban,
        payload -> 'account' ->> 'bban' as account_number,
        coalesce(payload -> 'account' ->> 'bic', payload -> 'institution' ->> 'bic') as swift_bic,
        upper(payload -> 'account' ->> 'currency') as currency,
        -- ISO cash account types, spelled like the other sources' account types.
        case payload -> 'account' ->> 'cashAccountType'
            when 'CACC' then 'TRANSACTION'
            when 'SVGS' then 'SAVINGS'
            when 'CARD' then 'CREDIT_CARD'
            else payload -> 'account' ->> 'cashAccountType'
        end as account_type,
        coalesce(
            payload -> 'account' ->> 'name',
            payload -> 'account' ->> 'displayName',
            payload -> 'account' ->> 'product'
        ) as display_name,
        coalesce(payload -> 'metadata' ->> 'institution_id', payload -> 'institution' ->> 'id')
            as bank_provider_id,
        payload -> 'institution' ->> 'name' as bank_name,
        coalesce(payload -> 'account' ->> 'ownerName', payload -> 'metadata' ->> 'owner_name') as owner_name,
        fetched_at
    from source
),

deduplicated as (
    {{ deduplicate('typed', 'account_ref', 'fetched_at desc, raw_id desc') }}
),

final as (
    select
        'gocardless' as source,
        account_ref,
        nullif(iban, '') as iban,
        account_number,
        cast(null as text) as sort_code,
        swift_bic,
        currency,
        account_type,
        display_name,
        bank_provider_id,
        bank_name,
        owner_name,
        fetched_at
    from deduplicated
)

select * from final
