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
        {{ json_timestamp("payload ->> 'dateTime'") }} as reported_at,
        fetched_at
    from source
),

deduplicated as (
    {{ deduplicate('typed', 'account_ref, fetched_on', 'fetched_at desc, raw_id desc') }}
),

final as (
    select
        {{ surrogate_key(["'fibank'", 'account_ref', 'fetched_on']) }} as balance_key,
        'fibank' as source,
        account_ref,
        fetched_on,
        currency,
        current_balance,
        cast(null as numeric) as available_balance,
        cast(null as numeric) as overdraft_limit,
        reported_at,
        fetched_at
    from deduplicated
)

select * from final
