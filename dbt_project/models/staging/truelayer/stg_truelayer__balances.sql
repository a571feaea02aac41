with source as (
    select * from {{ source('truelayer', 'balances') }}
),

typed as (
    select
        raw_id,
        account_ref,
        cast(partition_key as date) as fetched_on,
        upper(payload ->> 'currency') as currency,
        cast(payload ->> 'current' as numeric) as current_balance,
        cast(payload ->> 'available' as numeric) as available_balance,
        cast(payload ->> 'overdraft' as numeric) as overdraft_limit,
        {{ json_timestamp("payload ->> 'update_timestamp'") }} as reported_at,
        fetched_at
    from source
),

{{ balance_snapshots('typed', 'truelayer') }}
