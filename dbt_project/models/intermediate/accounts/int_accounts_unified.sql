with truelayer_accounts as (
    select * from {{ ref('stg_truelayer__accounts') }}
),

unioned as (
    select
        source,
        account_ref,
        iban,
        currency,
        account_type,
        display_name,
        bank_name,
        fetched_at
    from truelayer_accounts
),

final as (
    select
        -- One real account, whichever source reports it: the IBAN when there is one,
        -- else the provider's own id, always with the currency.
        {{ surrogate_key(["coalesce(iban, source || ':' || account_ref)", 'currency']) }} as account_key,
        unioned.*
    from unioned
)

select * from final
