{#- The booking days an incremental run rebuilds beyond its window (macro on_rebuilt_days):
    int_transactions_unioned, int_transactions_rule_matches and fct_transactions rebuild these days
    with the window. Replaced whole on every run; on a full build, every booked day.
    - Restaged days: the days of every row staged again from the window's raw partitions
      (macros/restaging.sql). Mostly the window itself; beyond it a posting the bank moved, a Revolut
      payment completed days after it was made.
    - Rekeyed days: every day with a row of an account whose account_key the union does not carry
      yet (an account listed after its rows landed, one that now shares an IBAN with another
      source's, a Revolut account connected after its legs landed). The whole day, because the
      cross-source dedupe pairs reports of one account_key and day.
    - Left days: the day a restaged record's row sat on in the union before (a posting the bank
      moved away from it, a Revolut payment reverted after it completed), and the day a row on a
      window day was restaged onto from an older landing (its newer landing vanished). -#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook=["{{ serialize_builds() }}", "{% if is_incremental() %}delete from {{ this }}{% endif %}"],
) }}
{#- The union as the last run left it: not a ref(), since the union is built from this model. -#}
{%- set unioned = adapter.get_relation(this.database, this.schema, 'int_transactions_unioned')
    if is_incremental() else none -%}

{% for source_name, table_name in incrementally_staged_raw_tables() -%}
-- depends_on: {{ source(source_name, table_name) }}
{% endfor -%}
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
    -- Revolut legs on an account the connection does not list are left out of the union, not
    -- kept with no key: a listed account without rows may have legs waiting. (Other sources'
    -- accounts without rows are not checked: all their reports can lose the dedupe to another
    -- source's, and their history would be rebuilt on every run.)
    where (
            accounts.source = 'revolut'
            and not exists (
                select 1 from {{ unioned }} as built
                where built.source = accounts.source and built.account_ref = accounts.account_ref
            )
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

{%- if unioned %}

-- Record keys landed in the window's raw partitions, of every staged raw table.
relanded_keys as (
    {%- for source_name, table_name in incrementally_staged_raw_tables() %}
    select landed.record_key
    from {{ source(source_name, table_name) }} as landed
    where {{ raw_partition_in_window('landed.partition_key') }}
    {% if not loop.last %}union{% endif %}
    {%- endfor %}
),

-- Where their rows were before this run's restaging.
left_days as (
    select built.booking_date
    from {{ unioned }} as built
    where built.raw_record_key in (select record_key from relanded_keys)
),

-- Rows on the window's days before this run, now staged on another day.
window_rows as (
    select built.raw_record_key
    from {{ unioned }} as built
    where {{ booking_window('built.booking_date') }}
),

moved_from_window as (
    {%- for model in incrementally_staged_transactions() %}
    select staged.booking_date
    from {{ ref(model) }} as staged
    where staged.raw_record_key in (select raw_record_key from window_rows)
    {% if not loop.last %}union{% endif %}
    {%- endfor %}
),
{%- endif %}

final as (
    select booking_date from restaged where booking_date is not null
    union
    select booking_date from rekeyed where booking_date is not null
    {%- if unioned %}
    union
    select booking_date from left_days where booking_date is not null
    union
    select booking_date from moved_from_window where booking_date is not null
    {%- endif %}
)

select * from final
