-- The matches: one row per (bank line, counterpart) that belongs to a match.
--   1. One-to-one: the candidates of int_recon_candidates within tolerance, paired greedily under
--      one total order (rule priority, then score, then the closest day and amount, then the
--      keys), so a line or a counterpart is never used twice and the same inputs always give the
--      same pairs.
--   2. Many-to-one (rules with method many_to_one): a line still open that pays several open
--      ledger entries of one counterparty and expected date, their sum within the tolerance.
--   3. One-to-many (rules with method one_to_many): an entry still open paid in parts by several
--      open lines that each carry its reference (a reference candidate short of the amount); the
--      parts are taken in booking order until their sum reaches the entry within the tolerance.
-- The backtest (`bankflow recon backtest`) compiles it with vars recon_rules_relation and
-- recon_candidates_relation naming a changed rules file and the candidates under it.
{{ config(pre_hook="set local work_mem = '256MB'") }}
{% set rules_relation = var('recon_rules_relation', none) or ref('recon_rules') %}
{% set candidates_relation = var('recon_candidates_relation', none) or ref('int_recon_candidates') %}
-- depends_on: {{ ref('recon_rules') }}
-- depends_on: {{ ref('int_recon_candidates') }}
with rules as (
    select * from {{ rules_relation }}
    where enabled
),

candidates as not materialized (
    select * from {{ candidates_relation }}
    where within_tolerance
),

-- A reference on a line that pays less than the entry: perhaps one of its parts.
short_reference_candidates as (
    select * from {{ candidates_relation }}
    where not within_tolerance
        and counterpart_kind = 'ledger'
        and method in ('reference_exact', 'reference_normalised')
        and abs(bank_amount) < abs(counterpart_amount)
),

lines as not materialized (
    select * from {{ ref('int_recon_bank_lines') }}
),

entries as not materialized (
    select * from {{ ref('int_recon_ledger_entries') }}
    where not is_duplicate and account_key is not null
),

rejected as (
    select * from {{ ref('stg_ops__recon_verdicts') }}
    where verdict = 'rejected'
),

-- A pair that several rules propose can only ever be paired under its best one (it outranks the
-- others on both sides), so the rounds see each pair once. They read only the columns that order
-- the pairs; the rest is joined back to the pairs chosen.
pairing_keys as (
    select distinct on (transaction_key, counterpart_key)
        transaction_key,
        counterpart_key,
        rule_id,
        priority,
        score,
        abs(day_offset) as day_distance,
        abs(amount_difference) as amount_distance
    from candidates
    order by transaction_key, counterpart_key, priority, rule_id, score desc, abs(day_offset), abs(amount_difference)
),

lines_with_one_candidate as (
    select transaction_key from pairing_keys group by transaction_key having count(*) = 1
),

counterparts_with_one_candidate as (
    select counterpart_key from pairing_keys group by counterpart_key having count(*) = 1
),

-- A pair whose line and counterpart have no other candidate is each one's best in the first round
-- and competes with no other pair: it is taken as it is, and the rounds sort only the contested
-- rest (a few percent of the pairs), which gives the same pairs at a fraction of the cost.
uncontested as (
    select pairing_keys.transaction_key, pairing_keys.counterpart_key, pairing_keys.rule_id
    from pairing_keys
    inner join lines_with_one_candidate using (transaction_key)
    inner join counterparts_with_one_candidate using (counterpart_key)
),

contested as (
    select pairing_keys.*
    from pairing_keys
    where not exists (
        select 1 from uncontested
        where uncontested.transaction_key = pairing_keys.transaction_key
            and uncontested.counterpart_key = pairing_keys.counterpart_key
    )
),

contested_pairs as (
    {{ mutual_best_pairs(
        'contested', 'transaction_key', 'counterpart_key',
        'candidates.priority, candidates.rule_id, candidates.score desc, candidates.day_distance,'
        ~ ' candidates.amount_distance, candidates.transaction_key, candidates.counterpart_key',
        rounds=8
    ) }}
),

paired as (
    select transaction_key, counterpart_key, rule_id from uncontested
    union all
    select transaction_key, counterpart_key, rule_id from contested_pairs
),

one_to_one as (
    select candidates.*
    from candidates
    inner join paired
        on paired.transaction_key = candidates.transaction_key
        and paired.counterpart_key = candidates.counterpart_key
        and paired.rule_id = candidates.rule_id
),

open_lines as (
    select lines.*
    from lines
    where not exists (select 1 from one_to_one where one_to_one.transaction_key = lines.transaction_key)
),

open_entries as (
    select entries.*
    from entries
    where not exists (
        select 1 from one_to_one where one_to_one.counterpart_key = 'ledger:' || entries.entry_id
    )
),

entry_groups as (
    select
        {{ surrogate_key(['account_key', 'currency', 'counterparty_name_normalised', 'expected_date', 'sign(amount)']) }}
            as group_key,
        account_key,
        currency,
        expected_date,
        min(counterparty_name) as counterparty_name,
        sum(amount) as amount,
        count(*) as entry_count
    from open_entries
    group by account_key, currency, counterparty_name_normalised, expected_date, sign(amount)
    having count(*) >= 2
),

group_members as (
    select
        entry_groups.group_key,
        open_entries.entry_id
    from open_entries
    inner join entry_groups
        on entry_groups.group_key = {{ surrogate_key([
            'open_entries.account_key', 'open_entries.currency', 'open_entries.counterparty_name_normalised',
            'open_entries.expected_date', 'sign(open_entries.amount)'
        ]) }}
),

-- Each group with the whole units its sum may take within a many_to_one rule's tolerance: the
-- join to the lines is then an equi-join on the unit (joined on the account alone, a million
-- lines would meet every group of their account). Materialized, so that the planner joins it to
-- the lines by hash rather than walking the lateral units per line.
group_units as materialized (
    select
        rules.rule_id,
        rules.priority,
        rules.min_name_similarity,
        rules.amount_tolerance,
        rules.date_window_days,
        entry_groups.*,
        units.amount_unit
    from rules
    inner join entry_groups on rules.side = 'ledger'
    cross join lateral {{ amount_units('entry_groups.amount', 'rules.amount_tolerance') }}
    where rules.method = 'many_to_one'
),

-- The (group, line) pairs a person undid: a group that holds an entry of a rejected pair.
rejected_group_lines as (
    select group_members.group_key, rejected.transaction_key
    from rejected
    inner join group_members on 'ledger:' || group_members.entry_id = rejected.counterpart_key
),

batch_pairs_in_range as (
    select
        group_units.rule_id,
        group_units.priority,
        group_units.min_name_similarity,
        group_units.group_key,
        group_units.counterparty_name,
        group_units.entry_count,
        group_units.amount as counterpart_amount,
        group_units.expected_date,
        open_lines.transaction_key,
        open_lines.account_key,
        open_lines.amount as bank_amount,
        open_lines.currency,
        open_lines.booking_date,
        {{ padded_words('open_lines.name_text') }} as padded_text
    from group_units
    inner join open_lines
        on open_lines.account_key = group_units.account_key
        and open_lines.currency = group_units.currency
        and open_lines.amount_unit = group_units.amount_unit
    where open_lines.amount between group_units.amount - group_units.amount_tolerance
        and group_units.amount + group_units.amount_tolerance
        and open_lines.booking_date between group_units.expected_date - group_units.date_window_days
        and group_units.expected_date + group_units.date_window_days
        and not exists (
            select 1 from rejected_group_lines
            where rejected_group_lines.group_key = group_units.group_key
                and rejected_group_lines.transaction_key = open_lines.transaction_key
        )
),

batch_candidates as (
    select *
    from (
        select
            batch_pairs_in_range.*,
            {{ trigram_share('array' ~ name_trigrams('batch_pairs_in_range.counterparty_name'), 'batch_pairs_in_range.padded_text') }}
                as score
        from batch_pairs_in_range
    ) as scored
    where score >= min_name_similarity
),

batches as (
    {{ mutual_best_pairs(
        'batch_candidates', 'transaction_key', 'group_key',
        'candidates.priority, candidates.score desc, abs(candidates.booking_date - candidates.expected_date),'
        ~ ' candidates.transaction_key, candidates.group_key',
        rounds=8
    ) }}
),

lines_after_batches as (
    select open_lines.*
    from open_lines
    where not exists (select 1 from batches where batches.transaction_key = open_lines.transaction_key)
),

entries_after_batches as (
    select open_entries.*
    from open_entries
    where not exists (
        select 1
        from group_members
        inner join batches on batches.group_key = group_members.group_key
        where group_members.entry_id = open_entries.entry_id
    )
),

-- Each open entry's open lines carrying its reference, one row per (rule, entry, line), numbered
-- in booking order with the running sum of what they paid.
part_candidates as (
    select
        rules.rule_id,
        rules.priority,
        rules.amount_tolerance,
        shorts.counterpart_key,
        shorts.transaction_key,
        min(shorts.score) as score,
        min(shorts.bank_amount) as bank_amount,
        min(shorts.counterpart_amount) as counterpart_amount,
        min(shorts.day_offset) as day_offset,
        min(lines_after_batches.booking_date) as booking_date,
        min(shorts.account_key) as account_key,
        min(shorts.currency) as currency
    from rules
    inner join short_reference_candidates as shorts on rules.side = 'ledger'
    inner join lines_after_batches on lines_after_batches.transaction_key = shorts.transaction_key
    inner join entries_after_batches
        on 'ledger:' || entries_after_batches.entry_id = shorts.counterpart_key
    where rules.method = 'one_to_many'
        and abs(shorts.day_offset) <= rules.date_window_days
    group by rules.rule_id, rules.priority, rules.amount_tolerance, shorts.counterpart_key, shorts.transaction_key
),

part_runs as (
    select
        part_candidates.*,
        row_number() over parts_in_order as part_number,
        sum(bank_amount) over parts_in_order as paid_so_far
    from part_candidates
    window parts_in_order as (
        partition by rule_id, counterpart_key order by booking_date, transaction_key
    )
),

-- The first part at which an entry is paid in full; the best rule first.
paid_in_parts as (
    select distinct on (counterpart_key)
        rule_id,
        priority,
        counterpart_key,
        part_number as part_count,
        paid_so_far
    from part_runs
    where part_number >= 2
        and abs(paid_so_far - counterpart_amount) <= amount_tolerance
    order by counterpart_key, priority, part_number, rule_id
),

part_proposals as (
    select
        part_runs.*,
        paid_in_parts.part_count,
        paid_in_parts.paid_so_far as paid_in_full
    from part_runs
    inner join paid_in_parts
        on paid_in_parts.counterpart_key = part_runs.counterpart_key
        and paid_in_parts.rule_id = part_runs.rule_id
    where part_runs.part_number <= paid_in_parts.part_count
),

-- A line that two entries claim as a part goes to neither: both stay open as exceptions for a
-- person to decide, rather than one being chosen by an arbitrary order.
contested_parts as (
    select transaction_key
    from part_proposals
    group by transaction_key
    having count(*) > 1
),

parts as (
    select part_proposals.*
    from part_proposals
    where not exists (
        select 1
        from part_proposals as sibling
        inner join contested_parts on contested_parts.transaction_key = sibling.transaction_key
        where sibling.counterpart_key = part_proposals.counterpart_key
    )
),

one_to_one_matches as (
    select
        {{ surrogate_key(['rule_id', 'transaction_key', 'counterpart_key']) }} as match_key,
        transaction_key,
        counterpart_kind,
        counterpart_key,
        rule_id,
        method,
        score,
        day_offset,
        account_key,
        currency,
        bank_amount,
        counterpart_amount,
        counterpart_amount as match_counterpart_amount,
        bank_amount as match_bank_amount,
        explanation
    from one_to_one
),

batch_matches as (
    select
        {{ surrogate_key(['batches.rule_id', 'batches.transaction_key', 'batches.group_key']) }} as match_key,
        batches.transaction_key,
        'ledger' as counterpart_kind,
        'ledger:' || entries.entry_id as counterpart_key,
        batches.rule_id,
        'many_to_one' as method,
        batches.score,
        batches.booking_date - entries.expected_date as day_offset,
        batches.account_key,
        batches.currency,
        batches.bank_amount,
        entries.amount as counterpart_amount,
        batches.counterpart_amount as match_counterpart_amount,
        batches.bank_amount as match_bank_amount,
        concat_ws(
            '; ',
            'bank line ' || batches.transaction_key || ' pays ' || batches.entry_count || ' entries of '
                || batches.counterparty_name || ' expected on ' || batches.expected_date,
            'their sum ' || batches.counterpart_amount || ' vs bank ' || batches.bank_amount || ' ' || batches.currency,
            'name ' || round(batches.score * 100) || '% found',
            'rule ' || batches.rule_id
        ) as explanation
    from batches
    inner join group_members on group_members.group_key = batches.group_key
    inner join entries on entries.entry_id = group_members.entry_id
),

part_matches as (
    select
        {{ surrogate_key(['parts.rule_id', 'parts.counterpart_key']) }} as match_key,
        parts.transaction_key,
        'ledger' as counterpart_kind,
        parts.counterpart_key,
        parts.rule_id,
        'one_to_many' as method,
        parts.score,
        parts.day_offset,
        parts.account_key,
        parts.currency,
        parts.bank_amount,
        parts.counterpart_amount,
        parts.counterpart_amount as match_counterpart_amount,
        parts.paid_in_full as match_bank_amount,
        concat_ws(
            '; ',
            'bank line ' || parts.transaction_key || ' is part ' || parts.part_number || ' of '
                || parts.part_count || ' paying ' || entries.document_number || ' of '
                || coalesce(entries.counterparty_name, '(no name)') || ' expected on ' || entries.expected_date,
            'each part carries its reference; the parts sum ' || parts.paid_in_full || ' vs expected '
                || parts.counterpart_amount || ' ' || parts.currency,
            'rule ' || parts.rule_id
        ) as explanation
    from parts
    inner join entries on 'ledger:' || entries.entry_id = parts.counterpart_key
),

final as (
    select * from one_to_one_matches
    union all
    select * from batch_matches
    union all
    select * from part_matches
)

select * from final
