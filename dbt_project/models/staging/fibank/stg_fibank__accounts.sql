with source as (
    select * from {{ source('fibank', 'accounts') }}
),

typed as (
    select
        raw_id,
        account_ref,
        upper(replace(payload ->> 'ibanAcNo', ' ', '')) as iban,
        upper(payload ->> 'ccy') as currency,
        payload ->> 'acType' as account_kind,
        payload ->> 'acDesc' as display_name,
        payload ->> 'bic' as swift_bic,
        fetched_at
    from source
),

deduplicated as (
    {{ deduplicate('typed', 'account_ref', 'fetched_at desc, raw_id desc') }}
),

final as (
    select
        'fibank' as source,
        account_ref,
        nullif(iban, '') as iban,
        cast(null as text) as account_number,
        cast(null as text) as sort_code,
        swift_bic,
        currency,
        -- CA: current account, the kind the web app's account pick-list offers.
        case account_kind when 'CA' then 'TRANSACTION' else account_kind end as account_type,
        display_name,
        'fibank' as bank_provider_id,
        'Fibank' as bank_name,
        -- The holder is on the e-banking customer record, which is not landed.
        cast(null as text) as owner_name,
        fetched_at
    from deduplicated
)

select * from final
