-- What bank lines are matched against, in one shape: Razorpay settlements (paid out to whichever
-- account carries their UTR) and the ledger's entries (on the account they book against;
-- duplicates and entries on accounts no source reports are left out: they are exceptions).
with settlements as (
    select * from {{ ref('stg_razorpay__settlements') }}
    where status = 'processed' and utr is not null
),

entries as (
    select * from {{ ref('int_recon_ledger_entries') }}
    where not is_duplicate and account_key is not null
),

final as (
    select
        'settlement' as counterpart_kind,
        'razorpay:' || settlement_id as counterpart_key,
        cast(null as text) as account_key,
        utr as reference,
        {{ normalised_reference('utr') }} as reference_normalised,
        'Razorpay' as counterparty_name,
        amount,
        currency,
        created_date as expected_date,
        'settlement ' || settlement_id || ' (UTR ' || utr || ')' as label
    from settlements
    union all
    select
        'ledger',
        'ledger:' || entry_id,
        account_key,
        payment_reference,
        payment_reference_normalised,
        counterparty_name,
        amount,
        currency,
        expected_date,
        coalesce(entry_type, 'entry') || ' ' || document_number || ' (' || entry_id || ')'
    from entries
)

select * from final
