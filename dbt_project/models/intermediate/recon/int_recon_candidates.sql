-- Every pair (bank line, counterpart) an enabled one-to-one rule of recon_rules proposes: a Razorpay
-- settlement by its UTR, a ledger entry by its payment reference (int_recon_reference_candidates),
-- by amount, date and name, or by an amount and date no other line or entry shares.
-- `within_tolerance` says whether the amounts agree within the rule's tolerance: int_recon_matched
-- pairs only those, recon_exceptions reports reference hits outside it as amount mismatches.
-- Rules are data (the recon_rules seed): changing a tolerance, a window or `enabled` changes the
-- matches on the next run without a code change. With var recon_rules_relation (the backtest) it
-- reads that relation instead of the seed's table. Tables read more than once are `not
-- materialized` CTEs so that the planner keeps their statistics.
{% set rules_relation = var('recon_rules_relation', none) or ref('recon_rules') %}
{% set reference_candidates_relation = var('recon_reference_candidates_relation', none)
    or ref('int_recon_reference_candidates') %}
-- depends_on: {{ ref('recon_rules') }}
-- depends_on: {{ ref('int_recon_reference_candidates') }}
with rules as (
    select * from {{ rules_relation }}
    where enabled and method in ('reference_exact', 'reference_normalised', 'amount_date_name', 'amount_date_unique')
),

lines as not materialized (
    select * from {{ ref('int_recon_bank_lines') }}
),

counterparts as not materialized (
    select * from {{ ref('int_recon_counterparts') }}
),

rejected as (
    select * from {{ ref('stg_ops__recon_verdicts') }}
    where verdict = 'rejected'
),

reference_candidates as not materialized (
    select * from {{ reference_candidates_relation }}
),

-- A counterpart whose reference sits on a line of its amount is the reference rules' to decide:
-- neither it nor that line is paired by amount, which keeps the name comparisons to the few
-- pairs that need them.
decided_by_reference as (
    select reference_candidates.counterpart_key, reference_candidates.transaction_key
    from reference_candidates
    inner join rules on rules.rule_id = reference_candidates.rule_id
    where reference_candidates.within_tolerance
        -- A pair a person undid decides nothing: both sides may still match by amount.
        and not exists (
            select 1 from rejected
            where rejected.transaction_key = reference_candidates.transaction_key
                and rejected.counterpart_key = reference_candidates.counterpart_key
        )
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
    -- The whole units the amount may take within the tolerance: an equi-join, not a range scan.
    cross join lateral generate_series(
        floor(counterparts.amount - rules.amount_tolerance)::bigint,
        floor(counterparts.amount + rules.amount_tolerance)::bigint
    ) as units (amount_unit)
    inner join lines
        on lines.account_key = counterparts.account_key
        and lines.amount_unit = units.amount_unit
        and lines.currency = counterparts.currency
    where rules.method in ('amount_date_name', 'amount_date_unique')
        and lines.amount between counterparts.amount - rules.amount_tolerance
        and counterparts.amount + rules.amount_tolerance
        and lines.booking_date between counterparts.expected_date - rules.date_window_days
        and counterparts.expected_date + rules.date_window_days
        and not exists (
            select 1 from decided_by_reference as decided
            where decided.counterpart_key = counterparts.counterpart_key
        )
        and not exists (
            select 1 from decided_by_reference as decided
            where decided.transaction_key = lines.transaction_key
        )
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
    select rule_id, counterpart_key, transaction_key, score, matched_on from reference_candidates
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
