-- The matches: one row per (bank line, counterpart) that belongs to a match.
--   1. One-to-one: the candidates of int_recon_candidates within tolerance, paired greedily under
--      one total order (rule priority, then score, then the closest day and amount, then the
--      keys), so a line or a counterpart is never used twice and the same inputs always give the
--      same pairs.
--   2. Many-to-one (rules with method many_to_one): a line still open that pays several open
--      ledger entries of one counterparty and expected date, their sum within the tolerance.
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

-- The pairing rounds sort every candidate several times: they read only the columns that order
-- the pairs, and the rest is joined back to the pairs chosen.
pairing_keys as (
    select
        transaction_key,
        counterpart_key,
        rule_id,
        priority,
        score,
        abs(day_offset) as day_distance,
        abs(amount_difference) as amount_distance
    from candidates
),

paired as (
    {{ mutual_best_pairs(
        'pairing_keys', 'transaction_key', 'counterpart_key',
        'candidates.priority, candidates.rule_id, candidates.score desc, candidates.day_distance,'
        ~ ' candidates.amount_distance, candidates.transaction_key, candidates.counterpart_key',
        rounds=8
    ) }}
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

batch_pairs_in_range as (
    select
        rules.rule_id,
        rules.priority,
        rules.min_name_similarity,
        entry_groups.group_key,
        entry_groups.counterparty_name,
        entry_groups.entry_count,
        entry_groups.amount as counterpart_amount,
        entry_groups.expected_date,
        open_lines.transaction_key,
        open_lines.account_key,
        open_lines.amount as bank_amount,
        open_lines.currency,
        open_lines.booking_date,
        open_lines.name_text
    from rules
    inner join entry_groups on rules.side = 'ledger'
    inner join open_lines
        on open_lines.account_key = entry_groups.account_key
        and open_lines.currency = entry_groups.currency
        and open_lines.amount between entry_groups.amount - rules.amount_tolerance
        and entry_groups.amount + rules.amount_tolerance
        and open_lines.booking_date between entry_groups.expected_date - rules.date_window_days
        and entry_groups.expected_date + rules.date_window_days
    where rules.method = 'many_to_one'
        and not exists (
            select 1
            from group_members
            inner join rejected on rejected.counterpart_key = 'ledger:' || group_members.entry_id
            where group_members.group_key = entry_groups.group_key
                and rejected.transaction_key = open_lines.transaction_key
        )
),

batch_candidates as (
    select *
    from (
        select
            batch_pairs_in_range.*,
            {{ name_similarity('batch_pairs_in_range.counterparty_name', 'batch_pairs_in_range.name_text') }}
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

final as (
    select * from one_to_one_matches
    union all
    select * from batch_matches
)

select * from final
