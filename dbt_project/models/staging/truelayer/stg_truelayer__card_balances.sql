with source as (
    select * from {{ source('truelayer', 'card_balances') }}
),

typed as (
    select
        raw_id,
        account_ref,
        cast(partition_key as date) as fetched_on,
        upper(payload ->> 'currency') as currency,
        -- Cards report what is owed as a positive `current`; as a balance it is negative.
        -cast(payload ->> 'current' as numeric) as current_balance,
        cast(payload ->> 'available' as numeric) as available_balance,
        cast(payload ->> 'credit_limit' as numeric) as overdraft_limit,
        {{ json_timestamp("payload ->> 'update_timestamp'") }} as reported_at,
        fetched_at
    from source
),

{{ balance_snapshots('typed', 'truelayer') }}
