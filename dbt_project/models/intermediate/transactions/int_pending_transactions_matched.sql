{#- Pending -> booked lineage: which pending row each booked row superseded, even when the booked
    row came under a new id (most sources give a pending payment an id of its own). -#}
{%- set max_days = var('pending_booking_max_days') | int -%}
{#- Incremental runs only need the pairs of the rows they rebuild ([min_date - lookback_days,
    max_date)): their pending twins are at most max_days older. With the default vars: all history. -#}
{%- set earliest_day -%}
    {{ window_start() }} - {{ max_days }}
{%- endset -%}

with snapshot as (
    select * from {{ ref('pending_transactions_snapshot') }}
),

transactions as (
    select * from {{ ref('int_transactions_unioned') }}
),

-- The latest version of every pending row ever seen, and when it left the pending set.
seen_pending as (
    select
        transaction_key,
        source,
        account_key,
        source_transaction_id,
        booking_date,
        amount,
        description_key,
        dbt_valid_to as left_pending_at
    from (
        select
            snapshot.*,
            row_number() over (partition by transaction_key order by dbt_valid_from desc) as version_rank
        from snapshot
    ) as versions
    where version_rank = 1
),

-- A row still in the pending set has not been superseded: it only competes once it has left.
left_pending as (
    select seen_pending.*
    from seen_pending
    where seen_pending.booking_date >= {{ earliest_day }}
        and not exists (
            select 1
            from transactions
            where transactions.status = 'pending'
                and transactions.transaction_key = seen_pending.transaction_key
        )
),

booked as (
    select
        transaction_key,
        source,
        account_key,
        source_transaction_id,
        booking_date,
        amount,
        {{ description_key('description') }} as description_key
    from transactions
    where status = 'booked'
        and booking_date >= {{ earliest_day }}
),

-- Twins: one real account, the same amount, the same text (spelled for comparison; no text on
-- both counts as the same), booked on the payment day or up to max_days after it.
candidates as (
    select
        left_pending.transaction_key as pending_transaction_key,
        booked.transaction_key,
        booked.booking_date - left_pending.booking_date as day_gap,
        coalesce(
            left_pending.source = booked.source
            and left_pending.source_transaction_id = booked.source_transaction_id,
            false
        ) as has_same_id,
        left_pending.left_pending_at
    from left_pending
    inner join booked
        on left_pending.account_key = booked.account_key
        and left_pending.amount = booked.amount
        and left_pending.description_key is not distinct from booked.description_key
        and booked.booking_date between left_pending.booking_date and left_pending.booking_date + {{ max_days }}
),

-- One pending row to at most one booked row and back, deterministically: the source's own id
-- kept across booking first, then the closest booking day, then the pending row that left the
-- pending set last (the latest word on a payment), then the keys.
pairs as (
    {{ mutual_best_pairs(
        'candidates',
        'pending_transaction_key',
        'transaction_key',
        'has_same_id desc, day_gap, left_pending_at desc nulls last, pending_transaction_key, transaction_key'
    ) }}
),

final as (
    select
        transaction_key,
        pending_transaction_key,
        day_gap,
        has_same_id,
        pairing_round
    from pairs
)

select * from final
