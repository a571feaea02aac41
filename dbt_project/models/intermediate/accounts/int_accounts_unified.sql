with truelayer_accounts as (
    select * from {{ ref('stg_truelayer__accounts') }}
),

truelayer_cards as (
    select * from {{ ref('stg_truelayer__cards') }}
),

berlin_group_accounts as (
    select * from {{ ref('stg_berlin_group__accounts') }}
),

revolut_accounts as (
    select * from {{ ref('stg_revolut__accounts') }}
),

gocardless_accounts as (
    select * from {{ ref('stg_gocardless__accounts') }}
),

rest_accounts as (
    select * from {{ ref('stg_rest__accounts') }}
),

fibank_accounts as (
    select * from {{ ref('stg_fibank__accounts') }}
),

file_accounts as (
    select * from {{ ref('stg_files__accounts') }}
),

-- Every staging accounts model has the same columns (the staging contract).
unioned as (
    select * from truelayer_accounts
    union all
    select * from truelayer_cards
    union all
    select * from berlin_group_accounts
    union all
    select * from revolut_accounts
    union all
    select * from gocardless_accounts
    union all
    select * from rest_accounts
    union all
    select * from fibank_accounts
    union all
    select * from file_accounts
),

final as (
    select
        -- One real account, whichever source reports it: the IBAN when there is one; else the
        -- bank and account number (an Indian account seen by its bank's API and in its statement
        -- files), cards excepted (a card number here is only its last four digits); else the
        -- provider's own id. Always with the currency.
        {{ surrogate_key([
            "coalesce(iban, case when account_type is distinct from 'CREDIT_CARD' and bank_provider_id is not null"
            ~ " and account_number is not null then lower(bank_provider_id) || ':' || account_number end,"
            ~ " source || ':' || account_ref)",
            'currency',
        ]) }} as account_key,
        source,
        account_ref,
        iban,
        currency,
        account_type,
        display_name,
        bank_name,
        owner_name,
        fetched_at
    from unioned
)

select * from final
