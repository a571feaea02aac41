{#- The staging model of one gocardless transactions table, booked or pending: the two
    differ only in their source table and status (pending rows are filed under their expected
    date and carry no running balance). -#}
{% macro gocardless_transactions_staging(source_table, status) %}
with source as (
    select * from {{ source('gocardless', source_table) }}
),

typed as (
    select
        raw_id,
        record_key,
        account_ref,
        cast(partition_key as date) as booking_date,
        -- Amounts are JSON strings ("-12.30"): cast from the text, never through float.
        cast(payload -> 'transactionAmount' ->> 'amount' as numeric) as amount,
        upper(payload -> 'transactionAmount' ->> 'currency') as currency,
        {{ json_date("payload ->> 'valueDate'") }} as value_date,
        {{ json_timestamp("payload ->> 'bookingDateTime'") }} as booking_date_time,
        payload ->> 'entryReference' as entry_reference,
        payload ->> 'endToEndId' as end_to_end_id,
        payload ->> 'creditorName' as creditor_name,
        payload ->> 'debtorName' as debtor_name,
        upper(replace(payload -> 'creditorAccount' ->> 'iban', ' ', '')) as creditor_iban,
        upper(replace(payload -> 'debtorAccount' ->> 'iban', ' ', '')) as debtor_iban,
        payload ->> 'merchantCategoryCode' as mcc,
        coalesce(
            payload ->> 'remittanceInformationUnstructured',
            array_to_string(
                array(select jsonb_array_elements_text(payload -> 'remittanceInformationUnstructuredArray')), ' '
            ),
            payload ->> 'additionalInformation'
        ) as description,
        coalesce(payload ->> 'bankTransactionCode', payload ->> 'proprietaryBankTransactionCode')
            as bank_transaction_code,
        cast(payload -> 'balanceAfterTransaction' -> 'balanceAmount' ->> 'amount' as numeric) as balance_after,
        fetched_at
    from source
),

deduplicated as (
    -- The same identity can be landed twice if the bank moves a booking to another day:
    -- the latest fetch wins.
    {{ deduplicate('typed', 'account_ref, record_key', 'fetched_at desc, raw_id desc') }}
),

final as (
    select
        {{ surrogate_key(["'gocardless'", 'account_ref', "'" ~ status ~ "'", 'record_key']) }} as transaction_key,
        'gocardless' as source,
        account_ref,
        record_key as source_transaction_id,
        entry_reference,
        end_to_end_id,
        '{{ status }}' as status,
        booking_date,
        value_date,
        coalesce(booking_date_time, cast(booking_date as timestamp) at time zone 'UTC') as booked_at,
        amount,
        currency,
        -- The sign says the direction (Berlin Group); the other party is the creditor of money
        -- out and the debtor of money in, whichever the bank filled.
        case when amount < 0 then coalesce(creditor_name, debtor_name) else coalesce(debtor_name, creditor_name) end
            as counterparty_name,
        case when amount < 0 then coalesce(creditor_iban, debtor_iban) else coalesce(debtor_iban, creditor_iban) end
            as counterparty_iban,
        -- A merchant category code marks a card payment: its creditor is the merchant.
        case when mcc is not null and amount < 0 then creditor_name end as merchant_name,
        mcc,
        description,
        case when amount < 0 then 'DEBIT' else 'CREDIT' end as transaction_type,
        bank_transaction_code,
        cast(null as text) as provider_category,
        cast(null as text) as provider_subcategory,
        {{ 'balance_after' if status == 'booked' else 'cast(null as numeric)' }} as balance_after,
        record_key as raw_record_key,
        fetched_at
    from deduplicated
)

select * from final
{% endmacro %}
