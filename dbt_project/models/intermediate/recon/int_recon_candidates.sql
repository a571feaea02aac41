-- Every pair (bank line, counterpart) an enabled one-to-one rule of recon_rules proposes: a Razorpay
-- settlement by its UTR, a ledger entry by its payment reference (int_recon_reference_candidates),
-- by amount, date and name, or by an amount and date no other line or entry shares (both from
-- int_recon_amount_date_pairs).
-- `within_tolerance` says whether the amounts agree within the rule's tolerance: int_recon_matched
-- pairs only those, recon_exceptions reports reference hits outside it as amount mismatches.
-- Rules are data (the recon_rules seed): changing a tolerance, a window or `enabled` changes the
-- matches on the next run without a code change. With vars recon_rules_relation,
-- recon_reference_candidates_relation and recon_amount_date_pairs_relation (the backtest) it reads
-- those relations instead of the pipeline's tables. Tables read more than once are `not
-- materialized` CTEs so that the planner keeps their statistics.
{% set rules_relation = var('recon_rules_relation', none) or ref('recon_rules') %}
{% set reference_candidates_relation = var('recon_reference_candidates_relation', none)
    or ref('int_recon_reference_candidates') %}
{% set amount_date_pairs_relation = var('recon_amount_date_pairs_relation', none)
    or ref('int_recon_amount_date_pairs') %}
-- depends_on: {{ ref('recon_rules') }}
-- depends_on: {{ ref('int_recon_reference_candidates') }}
-- depends_on: {{ ref('int_recon_amount_date_pairs') }}
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

amount_date_pairs as not materialized (
    select * from {{ amount_date_pairs_relation }}
),

amount_date_name_candidates as (
    select
        rule_id,
        counterpart_key,
        transaction_key,
        name_similarity as score,
        'name ' || counterparty_name || ' ' || round(name_similarity * 100) || '% found' as matched_on
    from amount_date_pairs
    where method = 'amount_date_name'
        and name_similarity >= min_name_similarity
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
    from amount_date_pairs
    where method = 'amount_date_unique'
        and lines_for_counterpart = 1
        and counterparts_for_line = 1
        and (min_name_similarity is null or name_similarity >= min_name_similarity)
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
