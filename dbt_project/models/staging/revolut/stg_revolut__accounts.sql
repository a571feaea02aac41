with source as (
    select * from {{ source('revolut', 'accounts') }}
),

typed as (
    select
        raw_id,
        account_ref,
        payload ->> 'name' as display_name,
        upper(payload ->> 'currency') as currency,
        upper(replace(payload -> 'bank_details' -> 0 ->> 'iban', ' ', '')) as iban,
        payload -> 'bank_details' -> 0 ->> 'account_no' as account_number,
        payload -> 'bank_details' -> 0 ->> 'sort_code' as sort_code,
        payload -> 'bank_details' -> 0 ->> 'bic' as swift_bic,
        -- The beneficiary of the account's payment details is its holder.
        payload -> 'bank_details' -> 0 ->> 'beneficiary' as owner_name,
        fetched_at
    from source
),

deduplicated as (
    {{ deduplicate('typed', 'account_ref', 'fetched_at desc, raw_id desc') }}
),

final as (
    select
        'revolut' as source,
        account_ref,
        nullif(iban, '') as iban,
        account_number,
        -- Revolut sends the sort code as six digits; TrueLayer's style is 04-00-04.
        case
            when sort_code ~ '^[0-9]{6}$'
                then substr(sort_code, 1, 2) || '-' || substr(sort_code, 3, 2) || '-' || substr(sort_code, 5, 2)
            else sort_code
        end as sort_code,
        swift_bic,
        currency,
        -- Revolut Business accounts are all current accounts; TrueLayer's word for that.
        'TRANSACTION' as account_type,
        display_name,
        'revolut-business' as bank_provider_id,
        'Revolut Business' as bank_name,
        owner_name,
        fetched_at
    from deduplicated
)

select * from final
