with source as (
    select * from {{ source('revolut', 'balances') }}
),

typed as (
    select
        raw_id,
        account_ref,
        cast(partition_key as date) as fetched_on,
        upper(payload ->> 'currency') as currency,
        cast(payload ->> 'balance' as numeric) as current_balance,
        -- Revolut reports one balance; what is available is that balance.
        cast(payload ->> 'balance' as numeric) as available_balance,
        cast(null as numeric) as overdraft_limit,
        {{ json_timestamp("payload ->> 'updated_at'") }} as reported_at,
        fetched_at
    from source
),

{{ balance_snapshots('typed', 'revolut') }}
