-- The pending set as of this run, one row per pending movement (after the cross-source dedupe):
-- what pending_transactions_snapshot records each run, because raw keeps only each account's
-- latest pending set and a pending row is gone from it by the time its booked row arrives.
with transactions as (
    select * from {{ ref('int_transactions_unioned') }}
),

final as (
    select
        transaction_key,
        source,
        account_key,
        source_transaction_id,
        booking_date,
        booked_at,
        amount,
        currency,
        description,
        {{ description_key('description') }} as description_key
    from transactions
    where status = 'pending'
)

select * from final
