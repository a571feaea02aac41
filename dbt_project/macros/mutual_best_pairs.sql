{#- Greedy one-to-one pairing of the candidate pairs in `candidates` (a relation or CTE with
    columns `left_key` and `right_key`, one row per candidate pair): under one global order of
    pairs (`order_by`, which must end in both keys so that it is total), the best pair is taken,
    every pair sharing a side with it is dropped, and so on.

    Computed as rounds of mutual best matches: in each round a pair forms when it is the best
    remaining pair of both its sides. The globally best remaining pair is always mutual, so the
    rounds build exactly the greedy matching; `rounds` caps them (a chain of competing pairs
    longer than that leaves its tail unpaired, never wrongly paired).

    Renders one select (with its own CTEs): every column of the chosen candidate rows plus
    `pairing_round`. Use it as the body of a CTE. -#}
{% macro mutual_best_pairs(candidates, left_key, right_key, order_by, rounds=4) %}
    with
    {%- for round in range(1, rounds + 1) %}
    round_{{ round }}_ranked as (
        select
            candidates.*,
            row_number() over (partition by candidates.{{ left_key }} order by {{ order_by }}) as left_rank,
            row_number() over (partition by candidates.{{ right_key }} order by {{ order_by }}) as right_rank
        from {{ candidates }} as candidates
        {%- if round > 1 %}
        where not exists (
            select 1 from paired_before_{{ round }} as paired
            where paired.{{ left_key }} = candidates.{{ left_key }}
        )
            and not exists (
                select 1 from paired_before_{{ round }} as paired
                where paired.{{ right_key }} = candidates.{{ right_key }}
            )
        {%- endif %}
    ),

    round_{{ round }}_pairs as (
        select
            round_{{ round }}_ranked.*,
            {{ round }} as pairing_round
        from round_{{ round }}_ranked
        where left_rank = 1 and right_rank = 1
    ),

    paired_before_{{ round + 1 }} as (
        {%- if round > 1 %}
        select {{ left_key }}, {{ right_key }} from paired_before_{{ round }}
        union all
        {%- endif %}
        select {{ left_key }}, {{ right_key }} from round_{{ round }}_pairs
    ),
    {%- endfor %}

    all_pairs as (
        {%- for round in range(1, rounds + 1) %}
        select * from round_{{ round }}_pairs
        {%- if not loop.last %}
        union all
        {%- endif %}
        {%- endfor %}
    )

    select * from all_pairs
{% endmacro %}
