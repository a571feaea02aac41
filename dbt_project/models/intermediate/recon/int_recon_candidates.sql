-- Every pair (bank line, counterpart) an enabled one-to-one rule of recon_rules proposes: a Razorpay
-- settlement by its UTR, a ledger entry by its payment reference, by amount, date and name, or by
-- an amount and date no other line or entry shares.
-- `within_tolerance` says whether the amounts agree within the rule's tolerance: int_recon_matched
-- pairs only those, recon_exceptions reports reference hits outside it as amount mismatches.
-- Rules are data (the recon_rules seed): changing a tolerance, a window or `enabled` changes the
-- matches on the next run without a code change. With var recon_rules_relation (the backtest) it
-- reads that relation instead of the seed's table.
{% set rules_relation = var('recon_rules_relation', none) or ref('recon_rules') %}
-- depends_on: {{ ref('recon_rules') }}
with rules as (
    select * from {{ rules_relation }}
    where enabled and method in ('reference_exact', 'reference_normalised', 'amount_date_name', 'amount_date_unique')
),

lines as (
    select * from {{ ref('int_recon_bank_lines') }}
),

bank_references as (
    select * from {{ ref('int_recon_bank_references') }}
),

entries as (
    select * from {{ ref('int_recon_ledger_entries') }}
    where not is_duplicate and account_key is not null
),

settlements as (
    select * from {{ ref('stg_razorpay__settlements') }}
    where status = 'processed' and utr is not null
),

rejected as (
    select * from {{ ref('stg_ops__recon_verdicts') }}
    where verdict = 'rejected'
),

-- The counterparts in one shape: what is expected, by which reference, when, from or to whom.
counterparts as (
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
        entry_type || ' ' || document_number || ' (' || entry_id || ')'
    from entries
),

reference_hits as (
    select
        rules.rule_id,
        counterparts.counterpart_key,
        bank_references.transaction_key,
        bank_references.reference as matched_on
    from rules
    inner join counterparts on counterparts.counterpart_kind = rules.side
    inner join bank_references
        on rules.method = 'reference_exact' and bank_references.reference = counterparts.reference
    union
    select
        rules.rule_id,
        counterparts.counterpart_key,
        bank_references.transaction_key,
        bank_references.reference
    from rules
    inner join counterparts on counterparts.counterpart_kind = rules.side
    inner join bank_references
        on rules.method = 'reference_normalised'
        and bank_references.reference_normalised = counterparts.reference_normalised
),

reference_candidates as (
    select distinct on (hits.rule_id, hits.counterpart_key, hits.transaction_key)
        hits.rule_id,
        hits.counterpart_key,
        hits.transaction_key,
        cast(case rules.method when 'reference_exact' then 1.000 else 0.950 end as numeric(4, 3)) as score,
        'reference ' || hits.matched_on as matched_on
    from reference_hits as hits
    inner join rules on rules.rule_id = hits.rule_id
    inner join counterparts on counterparts.counterpart_key = hits.counterpart_key
    inner join lines on lines.transaction_key = hits.transaction_key
    where lines.currency = counterparts.currency
        and (counterparts.account_key is null or lines.account_key = counterparts.account_key)
        and abs(lines.booking_date - counterparts.expected_date) <= rules.date_window_days
        and sign(lines.amount) = sign(counterparts.amount)
    order by hits.rule_id, hits.counterpart_key, hits.transaction_key, hits.matched_on
),

amount_date_pairs as (
    select
        rules.rule_id,
        counterparts.counterpart_key,
        lines.transaction_key,
        rules.min_name_similarity,
        counterparts.counterparty_name,
        lines.name_text
    from rules
    inner join counterparts on counterparts.counterpart_kind = rules.side
    inner join lines
        on lines.account_key = counterparts.account_key
        and lines.currency = counterparts.currency
        and lines.amount between counterparts.amount - rules.amount_tolerance
        and counterparts.amount + rules.amount_tolerance
        and lines.booking_date between counterparts.expected_date - rules.date_window_days
        and counterparts.expected_date + rules.date_window_days
    where rules.method in ('amount_date_name', 'amount_date_unique')
),

-- For amount_date_unique: how many lines each entry could be, and how many entries each line.
amount_date_counts as (
    select
        amount_date_pairs.*,
        count(*) over (partition by rule_id, counterpart_key) as lines_for_counterpart,
        count(*) over (partition by rule_id, transaction_key) as counterparts_for_line
    from amount_date_pairs
),

amount_date_name_candidates as (
    select
        rule_id,
        counterpart_key,
        transaction_key,
        similarity as score,
        'name ' || counterparty_name || ' ' || round(similarity * 100) || '% found' as matched_on
    from (
        select
            amount_date_counts.*,
            {{ name_similarity('amount_date_counts.counterparty_name', 'amount_date_counts.name_text') }} as similarity
        from amount_date_counts
        where rule_id in (select rule_id from rules where method = 'amount_date_name')
    ) as scored
    where similarity >= min_name_similarity
),

-- The only line with the amount in the window, and the line's only entry: the pairing is
-- unambiguous even when the statement spells the name beyond recognition ('SALARY A MARTIN').
amount_date_unique_candidates as (
    select
        rule_id,
        counterpart_key,
        transaction_key,
        cast(0.500 as numeric(4, 3)) as score,
        'the only line with this amount in the window, and its only candidate' as matched_on
    from amount_date_counts
    where rule_id in (select rule_id from rules where method = 'amount_date_unique')
        and lines_for_counterpart = 1
        and counterparts_for_line = 1
        and (
            min_name_similarity is null
            or {{ name_similarity('amount_date_counts.counterparty_name', 'amount_date_counts.name_text') }}
                >= amount_date_counts.min_name_similarity
        )
),

candidates as (
    select * from reference_candidates
    union all
    select * from amount_date_name_candidates
    union all
    select * from amount_date_unique_candidates
),

final as (
    select
        candidates.transaction_key,
        counterparts.counterpart_kind,
        candidates.counterpart_key,
        candidates.rule_id,
        rules.method,
        rules.priority,
        candidates.score,
        lines.booking_date - counterparts.expected_date as day_offset,
        lines.amount - counterparts.amount as amount_difference,
        abs(lines.amount - counterparts.amount) <= rules.amount_tolerance as within_tolerance,
        lines.account_key,
        lines.amount as bank_amount,
        counterparts.amount as counterpart_amount,
        lines.currency,
        concat_ws(
            '; ',
            candidates.matched_on || ' links bank line ' || lines.transaction_key || ' to ' || counterparts.label,
            case
                when lines.amount = counterparts.amount then 'amounts equal (' || lines.amount || ' ' || lines.currency || ')'
                else 'bank ' || lines.amount || ' vs expected ' || counterparts.amount || ' ' || lines.currency
            end,
            case
                when lines.booking_date = counterparts.expected_date then 'booked on the expected day'
                else 'booked ' || abs(lines.booking_date - counterparts.expected_date) || ' day(s) '
                    || case when lines.booking_date > counterparts.expected_date then 'after' else 'before' end
                    || ' the expected day'
            end,
            'rule ' || candidates.rule_id
        ) as explanation
    from candidates
    inner join rules on rules.rule_id = candidates.rule_id
    inner join counterparts on counterparts.counterpart_key = candidates.counterpart_key
    inner join lines on lines.transaction_key = candidates.transaction_key
    where not exists (
        select 1 from rejected
        where rejected.transaction_key = candidates.transaction_key
            and rejected.counterpart_key = candidates.counterpart_key
    )
)

select * from final
