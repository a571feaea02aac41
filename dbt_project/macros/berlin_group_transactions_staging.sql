{#- The staging model of one berlin_group transactions table, booked or pending: the two
    differ only in their source table and status (pending rows are filed under their expected
    date and carry no running balance). -#}
{% macro berlin_group_transactions_staging(source_table, status) %}
with source as (
    select * from {{ source('berlin_group', source_table) }}
),

typed as (
    select
        raw_id,
        record_key,
        account_ref,
        cast(partition_key as date) as booking_date,
        payload ->> 'transactionId' as transaction_id,
        payload ->> 'entryReference' as entry_reference,
        -- NOTPROVIDED is the SEPA placeholder for "no end-to-end id".
        nullif(payload ->> 'endToEndId', 'NOTPROVIDED') as end_to_end_id,
        {{ json_date("payload ->> 'valueDate'") }} as value_date,
        {{ json_timestamp("payload ->> 'bookingDateTime'") }} as booked_at,
        -- BG amounts are signed decimal strings: cast the text, never through float.
        cast(payload -> 'transactionAmount' ->> 'amount' as numeric) as amount,
        upper(payload -> 'transactionAmount' ->> 'currency') as currency,
        payload ->> 'creditorName' as creditor_name,
        payload ->> 'debtorName' as debtor_name,
        upper(replace(payload -> 'creditorAccount' ->> 'iban', ' ', '')) as creditor_iban,
        upper(replace(payload -> 'debtorAccount' ->> 'iban', ' ', '')) as debtor_iban,
        payload ->> 'merchantCategoryCode' as mcc,
        coalesce(
            payload ->> 'remittanceInformationUnstructured',
            payload -> 'remittanceInformationUnstructuredArray' ->> 0,
            payload ->> 'additionalInformation'
        ) as description,
        coalesce(payload ->> 'bankTransactionCode', payload ->> 'proprietaryBankTransactionCode')
            as bank_transaction_code,
        cast(payload -> 'balanceAfterTransaction' -> 'balanceAmount' ->> 'amount' as numeric) as balance_after,
        fetched_at
    from source
),

deduplicated as (
    -- The same identity can be landed twice if the bank moves an entry to another day:
    -- the latest fetch wins.
    {{ deduplicate('typed', 'account_ref, record_key', 'fetched_at desc, raw_id desc') }}
),

final as (
    select
        {{ surrogate_key(["'berlin_group'", 'account_ref', "'" ~ status ~ "'", 'record_key']) }} as transaction_key,
        'berlin_group' as source,
        account_ref,
        coalesce(transaction_id, record_key) as source_transaction_id,
        entry_reference,
        end_to_end_id,
        '{{ status }}' as status,
        booking_date,
        value_date,
        booked_at,
        amount,
        currency,
        -- The other party by the sign: money out goes to the creditor, money in comes from the debtor.
        case when amount < 0 then creditor_name else debtor_name end as counterparty_name,
        case when amount < 0 then creditor_iban else debtor_iban end as counterparty_iban,
        cast(null as text) as merchant_name,
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
