with truelayer_balances as (
    select * from {{ ref('stg_truelayer__balances') }}
),

truelayer_card_balances as (
    select * from {{ ref('stg_truelayer__card_balances') }}
),

berlin_group_balances as (
    select * from {{ ref('stg_berlin_group__balances') }}
),

revolut_balances as (
    select * from {{ ref('stg_revolut__balances') }}
),

gocardless_balances as (
    select * from {{ ref('stg_gocardless__balances') }}
),

rest_balances as (
    select * from {{ ref('stg_rest__balances') }}
),

fibank_balances as (
    select * from {{ ref('stg_fibank__balances') }}
),

file_balances as (
    select * from {{ ref('stg_files__balances') }}
),

accounts as (
    select * from {{ ref('int_accounts_unified') }}
),

unioned as (
    select * from truelayer_balances
    union all
    select * from truelayer_card_balances
    union all
    select * from berlin_group_balances
    union all
    select * from revolut_balances
    union all
    select * from gocardless_balances
    union all
    select * from rest_balances
    union all
    select * from fibank_balances
    union all
    select * from file_balances
),

final as (
    select
        unioned.balance_key,
        unioned.source,
        accounts.account_key,
        unioned.account_ref,
        unioned.fetched_on,
        unioned.currency,
        unioned.current_balance,
        unioned.available_balance,
        unioned.overdraft_limit,
        unioned.reported_at,
        unioned.fetched_at
    from unioned
    left join accounts
        on unioned.source = accounts.source
        and unioned.account_ref = accounts.account_ref
)

select * from final
