{{
    config(
        materialized='incremental',
        unique_key='transaction_key',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook=[
            "{{ serialize_builds() }}",
            "{{ collect_restated_keys() }}",
            "{{ record_fct_transactions_changes() }}",
            "{{ collect_keys_to_build() }}",
            "{{ delete_rebuilt_rows() }}",
        ],
        post_hook=["{{ delete_vanished_transfer_legs() }}", "{{ analyze_full_build() }}"],
        indexes=[
            {'columns': ['transaction_key']},
            {'columns': ['booking_date']},
            {'columns': ['status']},
            {'columns': ['transfer_group_key']},
            {'columns': ['category_source']},
            {'columns': ['booking_date', 'transaction_key']},
        ],
    )
}}

-- The indexes serve what an incremental run deletes (on_rebuilt_days) and restates
-- (collect_restated_keys), so neither scans the history; (booking_date, transaction_key) is the
-- order the HTTP export pages by, so a page seeks to the last one's key and reads only its rows. An incremental run builds the keys
-- collect_keys_to_build lists: the rebuilt days' rows and the restated ones.
-- depends_on: {{ ref('int_transactions_rebuilt_days') }}
-- depends_on: {{ ref('int_category_overrides') }}
-- depends_on: {{ ref('stg_ops__category_predictions') }}
-- (read by collect_restated_keys() on incremental runs only, where dbt's parse cannot see it)
-- depends_on: {{ ref('dim_accounts') }}
-- depends_on: {{ ref('categories') }}
-- (targets of this model's relationships tests: built before it, so the tests run in its step)

with transactions as (
    select * from {{ ref('int_transactions_unioned') }}
    {% if is_incremental() %}
    where transaction_key in (select transaction_key from {{ keys_to_build_table() }})
    {% endif %}
),

categorised as (
    select * from {{ ref('int_transactions_categorised') }}
    {% if is_incremental() %}
    -- An array, not a join: the planner pushes `= any` down through the categorisation views to
    -- index lookups, where it computed the views for all of history and joined after.
    where transaction_key = any(array(select transaction_key from {{ keys_to_build_table() }}))
    {% endif %}
),

fx_rates as (
    select
        rate_date as fx_rate_date,
        currency as fx_currency,
        rate_to_reporting as fx_rate_to_reporting
    from {{ ref('int_fx_rates_filled') }}
),

transfers as (
    select
        transaction_key as transfer_transaction_key,
        transfer_group_key as paired_transfer_group_key
    from {{ ref('int_transfers_paired') }}
),

pending_matches as (
    select
        transaction_key as superseding_transaction_key,
        pending_transaction_key
    from {{ ref('int_pending_transactions_matched') }}
),

final as (
    select
        transaction_key,
        source,
        reported_by,
        account_key,
        source_transaction_id,
        entry_reference,
        end_to_end_id,
        status,
        pending_matches.pending_transaction_key as supersedes_transaction_key,
        booking_date,
        value_date,
        booked_at,
        amount,
        currency,
        -- Through EUR at the booking day's reference rate (the last published one on days without);
        -- rounded to cents here only, fx_rate stays unrounded. Null where no rate covers the day.
        case
            when currency = '{{ var("reporting_currency") }}' then amount
            else round(amount * fx_rates.fx_rate_to_reporting, 2)
        end as amount_reporting,
        case
            when currency = '{{ var("reporting_currency") }}' then cast(1 as numeric)
            else fx_rates.fx_rate_to_reporting
        end as fx_rate,
        counterparty_name,
        counterparty_iban,
        merchant_name,
        mcc,
        description,
        bank_transaction_code,
        categorised.category,
        categorised.category_source,
        transfers.paired_transfer_group_key is not null as is_internal_transfer,
        transfers.paired_transfer_group_key as transfer_group_key,
        balance_after,
        raw_record_key
    from transactions
    left join fx_rates
        on transactions.currency = fx_rates.fx_currency
        and transactions.booking_date = fx_rates.fx_rate_date
    left join transfers on transactions.transaction_key = transfers.transfer_transaction_key
    left join pending_matches on transactions.transaction_key = pending_matches.superseding_transaction_key
    left join categorised using (transaction_key)
)

select * from final
