with source as (
    select * from {{ source('rest', 'balances') }}
),

typed as (
    select
        raw_id,
        source,
        account_ref,
        cast(partition_key as date) as fetched_on,
        upper(payload ->> 'currency') as currency,
        -- A bank that reports only what is available: that is the balance too.
        coalesce(cast(payload ->> 'balance' as numeric), cast(payload ->> 'available_balance' as numeric))
            as current_balance,
        coalesce(cast(payload ->> 'available_balance' as numeric), cast(payload ->> 'balance' as numeric))
            as available_balance,
        cast(null as numeric) as overdraft_limit,
        -- The banks report no time of their own for the balance: the fetch time.
        fetched_at as reported_at,
        fetched_at
    from source
),

{{ balance_snapshots('typed') }}
