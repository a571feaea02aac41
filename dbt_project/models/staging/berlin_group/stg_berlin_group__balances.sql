with source as (
    select * from {{ source('berlin_group', 'balances') }}
),

-- One row per balance entry of each stored response.
entries as (
    select
        source.raw_id,
        source.account_ref,
        cast(source.partition_key as date) as fetched_on,
        source.fetched_at,
        entry ->> 'balanceType' as balance_type,
        -- Amounts are strings: cast the text, never through float.
        cast(entry -> 'balanceAmount' ->> 'amount' as numeric) as amount,
        upper(entry -> 'balanceAmount' ->> 'currency') as currency,
        entry ->> 'lastChangeDateTime' as last_change
    from source
    left join lateral jsonb_array_elements(source.payload -> 'balances') as entry on true
),

typed as (
    select
        raw_id,
        account_ref,
        fetched_on,
        max(currency) as currency,
        -- Booked balance: today's interim if given, else yesterday's closing.
        coalesce(
            max(amount) filter (where balance_type = 'interimBooked'),
            max(amount) filter (where balance_type = 'closingBooked')
        ) as current_balance,
        coalesce(
            max(amount) filter (where balance_type = 'interimAvailable'),
            max(amount) filter (where balance_type = 'expected'),
            max(amount) filter (where balance_type = 'forwardAvailable')
        ) as available_balance,
        cast(null as numeric) as overdraft_limit,
        max({{ json_timestamp('last_change') }}) as reported_at,
        max(fetched_at) as fetched_at
    from entries
    group by raw_id, account_ref, fetched_on
),

{{ balance_snapshots('typed', 'berlin_group') }}
