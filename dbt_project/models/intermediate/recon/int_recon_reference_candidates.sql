-- The reference rules' candidate pairs: a counterpart's UTR or payment reference found among a
-- bank line's reference words (as typed, or normalised), on a line of the same currency, sign and
-- account (any account for a settlement), within the rule's date window. Amounts are not required
-- to agree: within_tolerance says whether they do (the others are amount mismatches). Its own
-- table so that the amount rules and the pairing are planned on its real size.
{% set rules_relation = var('recon_rules_relation', none) or ref('recon_rules') %}
-- depends_on: {{ ref('recon_rules') }}
with rules as (
    select * from {{ rules_relation }}
    where enabled and method in ('reference_exact', 'reference_normalised')
),

lines as not materialized (
    select * from {{ ref('int_recon_bank_lines') }}
),

bank_references as not materialized (
    select * from {{ ref('int_recon_bank_references') }}
),

counterparts as not materialized (
    select * from {{ ref('int_recon_counterparts') }}
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
        'reference ' || hits.matched_on as matched_on,
        abs(lines.amount - counterparts.amount) <= rules.amount_tolerance as within_tolerance
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

final as (
    select
        rule_id,
        counterpart_key,
        transaction_key,
        score,
        matched_on,
        within_tolerance
    from reference_candidates
)

select * from final
