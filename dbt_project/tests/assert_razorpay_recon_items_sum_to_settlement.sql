{#- Razorpay's own invariant, and the reconciliation's foundation: the recon items of a settlement
    (Σ credit - Σ debit) add up to the amount it paid out. Warn, not error: a provider-side gap
    must show, but not stop the other sources' marts. -#}
{# The check sits on the settlements it holds to their items (dagster-dbt attaches a test with two parents only where told). #}
{{ config(severity='warn', meta={'dagster': {'ref': {'name': 'stg_razorpay__settlements'}}}) }}

with items as (
    select settlement_id, sum(net_amount) as items_net
    from {{ ref('stg_razorpay__settlement_recon_items') }}
    group by settlement_id
),

settlements as (
    select settlement_id, amount
    from {{ ref('stg_razorpay__settlements') }}
)

select settlements.settlement_id, settlements.amount, items.items_net
from settlements
inner join items on items.settlement_id = settlements.settlement_id
where items.items_net <> settlements.amount
