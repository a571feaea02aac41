with source as (
    select * from {{ source('fibank', 'balances') }}
),

typed as (
    select
        raw_id,
        account_ref,
        cast(partition_key as date) as fetched_on,
        upper(payload ->> 'ccy') as currency,
        cast(payload ->> 'acBal' as numeric) as current_balance,
        cast(null as numeric) as available_balance,
        cast(null as numeric) as overdraft_limit,
        {{ json_timestamp("payload ->> 'dateTime'") }} as reported_at,
        fetched_at
    from source
),

{{ balance_snapshots('typed', 'fibank') }}
