with balances as (
    select * from {{ ref('int_balances_unioned') }}
),

final as (
    select
        balance_key,
        account_key,
        source,
        fetched_on as balance_date,
        currency,
        current_balance,
        available_balance,
        overdraft_limit,
        reported_at,
        fetched_at
    from balances
)

select * from final
