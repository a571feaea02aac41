{#- The end every balance staging model shares: the latest report per account and fetch day,
    in the one column set int_balances_unioned reads. `relation` (a CTE) must carry raw_id,
    account_ref, fetched_on, currency, current_balance, available_balance, overdraft_limit,
    reported_at and fetched_at; without `source_name` it carries `source` too (one raw table
    serving several banks). -#}
{% macro balance_snapshots(relation, source_name=none) -%}
deduplicated as (
    {{ deduplicate(relation, ('' if source_name else 'source, ') ~ 'account_ref, fetched_on', 'fetched_at desc, raw_id desc') }}
),

final as (
    select
        {{ surrogate_key([("'" ~ source_name ~ "'") if source_name else 'source', 'account_ref', 'fetched_on']) }} as balance_key,
        {{ ("'" ~ source_name ~ "'") if source_name else 'source' }} as source,
        account_ref,
        fetched_on,
        currency,
        current_balance,
        available_balance,
        overdraft_limit,
        reported_at,
        fetched_at
    from deduplicated
)

select * from final
{%- endmacro %}
