{#- The ledger table is the user's, not bankflow's: when it does not exist the model is empty (with
    the same columns), so a warehouse without books still reconciles its payment gateway. -#}
{%- set ledger = source('ledger', 'entries') -%}
{%- set exists = execute and adapter.get_relation(ledger.database, ledger.schema, ledger.identifier) is not none -%}
with source as (
    {%- if exists %}
    select * from {{ ledger }}
    {%- else %}
    select
        null::text as entry_id,
        null::text as bank_account,
        null::text as entry_type,
        null::text as document_number,
        null::text as payment_reference,
        null::text as counterparty_name,
        null::numeric as amount,
        null::text as currency,
        null::date as expected_date
    where false
    {%- endif %}
),

typed as (
    select
        cast(entry_id as text) as entry_id,
        upper(replace(cast(bank_account as text), ' ', '')) as bank_account,
        lower(cast(entry_type as text)) as entry_type,
        cast(document_number as text) as document_number,
        nullif(btrim(cast(payment_reference as text)), '') as payment_reference,
        cast(counterparty_name as text) as counterparty_name,
        cast(amount as numeric(18, 2)) as amount,
        upper(cast(currency as text)) as currency,
        cast(expected_date as date) as expected_date
    from source
),

final as (
    select
        entry_id,
        bank_account,
        entry_type,
        document_number,
        payment_reference,
        counterparty_name,
        amount,
        currency,
        expected_date
    from typed
)

select * from final
