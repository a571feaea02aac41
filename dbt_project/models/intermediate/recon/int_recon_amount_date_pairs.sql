-- The amount rules' pairs (methods amount_date_name and amount_date_unique): a ledger entry and a
-- bank line of one account and currency, the amounts within the rule's tolerance, booked within
-- the rule's date window of the expected day, neither side left to the reference rules. Each pair
-- says how many lines its entry could be and how many entries its line, and how much of the
-- entry's counterparty name the line's text holds. Its own table so that int_recon_candidates is
-- planned on its real size, and so that each name's trigrams are computed once, not once per
-- pair (a pair only looks them up in its line's text).
{% set rules_relation = var('recon_rules_relation', none) or ref('recon_rules') %}
{% set reference_candidates_relation = var('recon_reference_candidates_relation', none)
    or ref('int_recon_reference_candidates') %}
-- depends_on: {{ ref('recon_rules') }}
-- depends_on: {{ ref('int_recon_reference_candidates') }}
with rules as (
    select * from {{ rules_relation }}
    where enabled and method in ('amount_date_name', 'amount_date_unique')
),

reference_rules as (
    select * from {{ rules_relation }}
    where enabled and method in ('reference_exact', 'reference_normalised')
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
    inner join reference_rules on reference_rules.rule_id = reference_candidates.rule_id
    where reference_candidates.within_tolerance
        -- A pair a person undid decides nothing: both sides may still match by amount.
        and not exists (
            select 1 from rejected
            where rejected.transaction_key = reference_candidates.transaction_key
                and rejected.counterpart_key = reference_candidates.counterpart_key
        )
),

pairs as (
    select
        rules.rule_id,
        rules.method,
        rules.min_name_similarity,
        counterparts.counterpart_key,
        lines.transaction_key,
        counterparts.counterparty_name
    from rules
    inner join counterparts on counterparts.counterpart_kind = rules.side
    -- The whole units the amount may take within the tolerance: an equi-join, not a range scan.
    cross join lateral {{ amount_units('counterparts.amount', 'rules.amount_tolerance') }}
    inner join lines
        on lines.account_key = counterparts.account_key
        and lines.amount_unit = units.amount_unit
        and lines.currency = counterparts.currency
    where lines.amount between counterparts.amount - rules.amount_tolerance
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

-- Each distinct counterparty name's trigrams, computed once.
name_trigrams as (
    select names.counterparty_name, array{{ name_trigrams('names.counterparty_name') }} as trigrams
    from (select distinct counterparty_name from pairs where counterparty_name is not null) as names
),

-- The share of the name's trigrams found in the line's text (macro trigram_share); 0 for a name
-- with no letters or digits. Once per pair, whichever rules proposed it.
similarities as (
    select
        named_pairs.counterpart_key,
        named_pairs.transaction_key,
        {{ trigram_share('name_trigrams.trigrams', 'named_pairs.padded_text') }} as name_similarity
    from (
        -- The line's text padded once per pair, not once per trigram looked up in it.
        select distinct
            pairs.counterpart_key,
            pairs.transaction_key,
            pairs.counterparty_name,
            {{ padded_words('lines.name_text') }} as padded_text
        from pairs
        inner join lines on lines.transaction_key = pairs.transaction_key
    ) as named_pairs
    left join name_trigrams on name_trigrams.counterparty_name = named_pairs.counterparty_name
),

final as (
    select
        pairs.rule_id,
        pairs.method,
        pairs.counterpart_key,
        pairs.transaction_key,
        pairs.counterparty_name,
        pairs.min_name_similarity,
        similarities.name_similarity,
        count(*) over (partition by pairs.rule_id, pairs.counterpart_key) as lines_for_counterpart,
        count(*) over (partition by pairs.rule_id, pairs.transaction_key) as counterparts_for_line
    from pairs
    inner join similarities
        on similarities.counterpart_key = pairs.counterpart_key
        and similarities.transaction_key = pairs.transaction_key
)

select * from final
