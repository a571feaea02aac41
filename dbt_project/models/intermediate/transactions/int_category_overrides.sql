-- The user's category overrides keyed by the transaction_key a row has now. An override follows
-- its movement: set on a pending row, it applies to the booked row that superseded it; set on a
-- report another source's report of the same movement has since displaced (cross-source dedupe),
-- it applies to the kept one. An override set on the row itself wins; among carried ones the
-- latest.
with overrides as (
    select * from {{ ref('stg_ops__category_overrides') }}
),

pending_matches as (
    select * from {{ ref('int_pending_transactions_matched') }}
),

transactions as (
    select * from {{ ref('int_transactions_unioned') }}
),

-- The key an override's row goes by once booked (itself when it was no superseded pending row).
booked_keys as (
    select
        coalesce(pending_matches.transaction_key, overrides.transaction_key) as booked_key,
        overrides.transaction_key as overridden_key,
        overrides.category,
        overrides.note,
        overrides.overridden_at
    from overrides
    left join pending_matches
        on overrides.transaction_key = pending_matches.pending_transaction_key
),

-- The kept report's key, when another source's report of the movement displaced this one. Only
-- the reports naming an overridden key: the && is served by int_transactions_unioned's index on
-- the split keys (macro index_duplicate_keys), so this reads no other row of the history.
displaced as (
    select
        transactions.transaction_key,
        displaced_report.transaction_key as displaced_key
    from transactions
    cross join lateral unnest(string_to_array(transactions.duplicate_transaction_keys, ',')) as displaced_report (transaction_key)
    where transactions.duplicate_transaction_keys <> ''
        and string_to_array(transactions.duplicate_transaction_keys, ',')
        && array(select booked_keys.booked_key from booked_keys)
),

carried as (
    select
        coalesce(displaced.transaction_key, booked_keys.booked_key) as transaction_key,
        booked_keys.overridden_key,
        booked_keys.category,
        booked_keys.note,
        booked_keys.overridden_at
    from booked_keys
    left join displaced
        on booked_keys.booked_key = displaced.displaced_key
),

ranked as (
    select
        carried.*,
        row_number() over (
            partition by carried.transaction_key
            order by
                case when carried.overridden_key = carried.transaction_key then 0 else 1 end,
                carried.overridden_at desc,
                carried.overridden_key
        ) as override_rank
    from carried
),

final as (
    select
        transaction_key,
        category,
        note,
        overridden_at,
        overridden_key
    from ranked
    where override_rank = 1
)

select * from final
