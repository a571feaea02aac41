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
        {{ json_timestamp("payload ->> 'updated_at'") }} as reported_at,
        fetched_at
    from source
),

deduplicated as (
    {{ deduplicate('typed', 'account_ref, fetched_on', 'fetched_at desc, raw_id desc') }}
),

final as (
    select
        {{ surrogate_key(["'revolut'", 'account_ref', 'fetched_on']) }} as balance_key,
        'revolut' as source,
        account_ref,
        fetched_on,
        currency,
        current_balance,
        -- Revolut reports one balance; what is available is that balance.
        current_balance as available_balance,
        cast(null as numeric) as overdraft_limit,
        reported_at,
        fetched_at
    from deduplicated
)

select * from final
