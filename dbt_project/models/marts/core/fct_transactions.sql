{{
    config(
        materialized='incremental',
        unique_key='transaction_key',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook="{{ delete_rebuilt_rows() }}",
    )
}}

with transactions as (
    select * from {{ ref('int_transactions_unioned') }}
    {% if is_incremental() %}
    where status = 'pending' or ({{ booking_window('booking_date') }})
    {% endif %}
),

final as (
    select
        transaction_key,
        source,
        account_key,
        source_transaction_id,
        entry_reference,
        end_to_end_id,
        status,
        booking_date,
        value_date,
        booked_at,
        amount,
        currency,
        -- FX to the reporting currency arrives with the rates table; same-currency rows are exact now.
        case when currency = '{{ var("reporting_currency") }}' then amount end as amount_reporting,
        case when currency = '{{ var("reporting_currency") }}' then cast(1 as numeric) end as fx_rate,
        counterparty_name,
        counterparty_iban,
        merchant_name,
        mcc,
        description,
        bank_transaction_code,
        cast(null as text) as category,
        cast(null as text) as category_source,
        cast(null as boolean) as is_internal_transfer,
        cast(null as text) as transfer_group_key,
        balance_after,
        raw_record_key
    from transactions
)

select * from final
