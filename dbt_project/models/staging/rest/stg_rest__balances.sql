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
        cast(payload ->> 'balance' as numeric) as current_balance,
        cast(payload ->> 'available_balance' as numeric) as available_balance,
        fetched_at
    from source
),

deduplicated as (
    {{ deduplicate('typed', 'source, account_ref, fetched_on', 'fetched_at desc, raw_id desc') }}
),

final as (
    select
        {{ surrogate_key(['source', 'account_ref', 'fetched_on']) }} as balance_key,
        source,
        account_ref,
        fetched_on,
        currency,
        -- A bank that reports only what is available: that is the balance too.
        coalesce(current_balance, available_balance) as current_balance,
        coalesce(available_balance, current_balance) as available_balance,
        cast(null as numeric) as overdraft_limit,
        -- The banks report no time of their own for the balance: the fetch time.
        fetched_at as reported_at,
        fetched_at
    from deduplicated
)

select * from final
