-- The bank's side of reconciliation: every booked line that is not one leg of a transfer between
-- the owner's own accounts (those reconcile against each other in int_transfers_paired).
with transactions as (
    select * from {{ ref('fct_transactions') }}
),

final as (
    select
        transaction_key,
        account_key,
        source,
        booking_date,
        amount,
        currency,
        counterparty_name,
        entry_reference,
        end_to_end_id,
        description,
        -- Whole currency units: the equi-join key of the amount rules (a tolerance widens the
        -- counterpart's side to the units it spans).
        floor(amount)::bigint as amount_unit,
        -- Where a person would look for the payer's or payee's name on the statement.
        concat_ws(' ', counterparty_name, merchant_name, description) as name_text
    from transactions
    where status = 'booked' and not is_internal_transfer
)

select * from final
