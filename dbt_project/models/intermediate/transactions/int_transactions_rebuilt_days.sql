{#- The booking days an incremental run rebuilds beyond its window (macro on_rebuilt_days):
    int_transactions_unioned, int_transactions_rule_matches and fct_transactions rebuild these days
    with the window. Replaced whole on every run; on a full build, every booked day.
    - Restaged days: the days of every row staged again from the window's raw partitions
      (macros/restaging.sql). Mostly the window itself; beyond it a posting the bank moved, a Revolut
      payment completed days after it was made.
    - Rekeyed days: every day with a row of an account whose account_key the union does not carry
      yet (an account listed after its rows landed, one that now shares an IBAN with another
      source's, a Revolut account connected after its legs landed). The whole day, because the
      cross-source dedupe pairs reports of one account_key and day. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{% if is_incremental() %}delete from {{ this }}{% endif %}",
) }}
{#- The union as the last run left it: not a ref(), since the union is built from this model. -#}
{%- set unioned = adapter.get_relation(this.database, this.schema, 'int_transactions_unioned')
    if is_incremental() else none -%}

with accounts as (
    select * from {{ ref('int_accounts_unified') }}
),

restaged as (
    {%- for model in incrementally_staged_transactions() %}
    select booking_date from {{ ref(model) }}
    where {{ raw_partition_in_window('raw_partition_key') }}
    {% if not loop.last %}union{% endif %}
    {%- endfor %}
),

rekeyed_accounts as (
    {%- if unioned %}
    select accounts.source, accounts.account_ref
    from accounts
    where not exists (
            select 1 from {{ unioned }} as built
            where built.source = accounts.source and built.account_ref = accounts.account_ref
        )
        {%- for differs in ['built.account_key is null', 'built.account_key < accounts.account_key',
                            'built.account_key > accounts.account_key'] %}
        or exists (
            select 1 from {{ unioned }} as built
            where built.source = accounts.source and built.account_ref = accounts.account_ref
                and {{ differs }}
        )
        {%- endfor %}
    {%- else %}
    select source, account_ref from accounts where false
    {%- endif %}
),

rekeyed as (
    {%- for model in incrementally_staged_transactions() %}
    select staged.booking_date
    from {{ ref(model) }} as staged
    inner join rekeyed_accounts
        on staged.source = rekeyed_accounts.source
        and staged.account_ref = rekeyed_accounts.account_ref
    {% if not loop.last %}union{% endif %}
    {%- endfor %}
),

final as (
    select booking_date from restaged where booking_date is not null
    union
    select booking_date from rekeyed where booking_date is not null
)

select * from final
