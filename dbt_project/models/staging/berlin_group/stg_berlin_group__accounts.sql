with source as (
    select * from {{ source('berlin_group', 'accounts') }}
),

typed as (
    select
        raw_id,
        account_ref,
        -- ISO cash account types, in the words the other sources use.
        case payload ->> 'cashAccountType'
            when 'CACC' then 'TRANSACTION'
            when 'SVGS' then 'SAVINGS'
            else payload ->> 'cashAccountType'
        end as account_type,
        coalesce(payload ->> 'displayName', payload ->> 'name', payload ->> 'product') as display_name,
        upper(payload ->> 'currency') as currency,
        upper(replace(payload ->> 'iban', ' ', '')) as iban,
        payload ->> 'bban' as account_number,
        payload ->> 'bic' as swift_bic,
        payload ->> 'ownerName' as owner_name,
        fetched_at
    from source
),

deduplicated as (
    {{ deduplicate('typed', 'account_ref', 'fetched_at desc, raw_id desc') }}
),

final as (
    select
        'berlin_group' as source,
        account_ref,
        nullif(iban, '') as iban,
        account_number,
        cast(null as text) as sort_code,
        swift_bic,
        currency,
        account_type,
        display_name,
        -- BG account data does not name the bank; its BIC identifies it.
        swift_bic as bank_provider_id,
        cast(null as text) as bank_name,
        owner_name,
        fetched_at
    from deduplicated
)

select * from final
