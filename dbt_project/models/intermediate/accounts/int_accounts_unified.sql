with truelayer_accounts as (
    select * from {{ ref('stg_truelayer__accounts') }}
),

truelayer_cards as (
    select * from {{ ref('stg_truelayer__cards') }}
),

-- Every staging accounts model has the same columns (the staging contract).
unioned as (
    select * from truelayer_accounts
    union all
    select * from truelayer_cards
),

final as (
    select
        -- One real account, whichever source reports it: the IBAN when there is one,
        -- else the provider's own id, always with the currency.
        {{ surrogate_key(["coalesce(iban, source || ':' || account_ref)", 'currency']) }} as account_key,
        source,
        account_ref,
        iban,
        currency,
        account_type,
        display_name,
        bank_name,
        fetched_at
    from unioned
)

select * from final
