with source as (
    select * from {{ source('files', 'statements') }}
),

balances as (
    select
        source.raw_id,
        source.source,
        source.account_ref as file_account_id,
        upper(coalesce(source.payload ->> 'currency', balance ->> 'currency')) as currency,
        balance ->> 'kind' as kind,
        {{ json_date("balance ->> 'date'") }} as balance_date,
        cast(balance ->> 'amount' as numeric) as amount,
        source.fetched_at
    from source
    cross join lateral jsonb_array_elements(source.payload -> 'balances') as balance
),

-- A statement's closing balances, the ledger one beside the available one.
typed as (
    select
        min(raw_id) as raw_id,
        source,
        file_account_id || ':' || currency as account_ref,
        balance_date as fetched_on,
        currency,
        max(amount) filter (where kind = 'closing') as current_balance,
        coalesce(max(amount) filter (where kind = 'closing_available'), max(amount) filter (where kind = 'closing'))
            as available_balance,
        cast(null as numeric) as overdraft_limit,
        -- A statement's balance is as of the end of its day.
        cast(balance_date + 1 as timestamp) at time zone 'UTC' as reported_at,
        max(fetched_at) as fetched_at
    from balances
    where kind in ('closing', 'closing_available') and balance_date is not null
    group by source, file_account_id, currency, balance_date
    having max(amount) filter (where kind = 'closing') is not null
),

{{ balance_snapshots('typed') }}
