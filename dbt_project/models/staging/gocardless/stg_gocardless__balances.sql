with source as (
    select * from {{ source('gocardless', 'balances') }}
),

balances as (
    -- One row per balance of a report; the report's position keeps ties in the bank's order.
    select
        source.raw_id,
        source.account_ref,
        cast(source.partition_key as date) as fetched_on,
        source.fetched_at,
        entry.balance ->> 'balanceType' as balance_type,
        cast(entry.balance -> 'balanceAmount' ->> 'amount' as numeric) as amount,
        upper(entry.balance -> 'balanceAmount' ->> 'currency') as currency,
        case
            when entry.balance ->> 'lastChangeDateTime' is not null
                then {{ json_timestamp("entry.balance ->> 'lastChangeDateTime'") }}
            when entry.balance ->> 'referenceDate' ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$'
                then cast(entry.balance ->> 'referenceDate' as timestamp) at time zone 'UTC'
        end as reported_at,
        entry.position
    from source
    cross join lateral jsonb_array_elements(source.payload -> 'balances') with ordinality as entry (balance, position)
),

per_report as (
    -- Booked balance: closingBooked, else interimBooked, else openingBooked. Available:
    -- interimAvailable, else closingAvailable, else forwardAvailable, else expected.
    select
        raw_id,
        account_ref,
        fetched_on,
        fetched_at,
        (array_agg(amount order by array_position(
            array['closingBooked', 'interimBooked', 'openingBooked'], balance_type), position)
            filter (where balance_type in ('closingBooked', 'interimBooked', 'openingBooked')))[1]
            as current_balance,
        (array_agg(amount order by array_position(
            array['interimAvailable', 'closingAvailable', 'forwardAvailable', 'expected'], balance_type), position)
            filter (where balance_type in ('interimAvailable', 'closingAvailable', 'forwardAvailable', 'expected')))[1]
            as available_balance,
        cast(null as numeric) as overdraft_limit,
        (array_agg(currency order by position))[1] as currency,
        max(reported_at) as reported_at
    from balances
    group by raw_id, account_ref, fetched_on, fetched_at
),

{{ balance_snapshots('per_report', 'gocardless') }}
