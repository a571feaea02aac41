{#- The staging model of one transactions table of a Berlin-Group-shaped source, booked or
    pending: a Berlin Group bank (contract §1.5), or GoCardless, which passes its banks'
    transactions on in Berlin Group's shape (§8). Sources differ only in their parameters:

    - source_name, source_table: the one raw table this model stages;
    - status: booked or pending (pending rows are filed under their expected date and carry
      no running balance);
    - transaction_id_fields: the payload ids that name the transaction, most stable first;
      source_transaction_id is the first one given, else the raw record_key (the extract's
      identity, a content hash when the bank gave no id). ->> gives a JSON string's own text,
      so amounts are cast exactly. -#}
{% macro bg_transactions_staging(source_name, source_table, status, transaction_id_fields) %}
{%- if status == 'booked' %}{{ incremental_staging_config(source_name, source_table) }}{% endif %}
with source as (
    {%- if status == 'booked' %}
    {{ restaged_landings(source_name, source_table) }}
    {%- else %}
    select * from {{ source(source_name, source_table) }}
    {%- endif %}
),

typed as (
    select
        raw_id,
        record_key,
        account_ref,
        cast(partition_key as date) as booking_date,
        -- Only a non-empty JSON string is an id, as in the extract's record_key.
        coalesce(
            {%- for field in transaction_id_fields %}
            case when jsonb_typeof(payload -> '{{ field }}') = 'string' then {{ bg_reference("payload ->> '" ~ field ~ "'") }} end,
            {%- endfor %}
            record_key
        ) as source_transaction_id,
        -- NOTPROVIDED is SEPA's placeholder for no reference: kept, it would pose as one id shared by unrelated rows.
        {{ bg_reference("payload ->> 'entryReference'") }} as entry_reference,
        {{ bg_reference("payload ->> 'endToEndId'") }} as end_to_end_id,
        {{ json_date("payload ->> 'valueDate'") }} as value_date,
        {{ json_timestamp("payload ->> 'bookingDateTime'") }} as booking_date_time,
        -- Amounts are signed decimal strings: cast the text, never through float.
        cast(payload -> 'transactionAmount' ->> 'amount' as numeric) as amount,
        upper(payload -> 'transactionAmount' ->> 'currency') as currency,
        payload ->> 'creditorName' as creditor_name,
        payload ->> 'debtorName' as debtor_name,
        upper(replace(payload -> 'creditorAccount' ->> 'iban', ' ', '')) as creditor_iban,
        upper(replace(payload -> 'debtorAccount' ->> 'iban', ' ', '')) as debtor_iban,
        payload ->> 'merchantCategoryCode' as mcc,
        coalesce(
            nullif(payload ->> 'remittanceInformationUnstructured', ''),
            -- Every line, in order: banks split one remittance text over 140-character lines.
            (
                select nullif(string_agg(line.line_text, ' ' order by line.line_number), '')
                from jsonb_array_elements_text(
                    case
                        when jsonb_typeof(payload -> 'remittanceInformationUnstructuredArray') = 'array'
                            then payload -> 'remittanceInformationUnstructuredArray'
                    end
                ) with ordinality as line (line_text, line_number)
            ),
            nullif(payload ->> 'additionalInformation', '')
        ) as description,
        coalesce(payload ->> 'bankTransactionCode', payload ->> 'proprietaryBankTransactionCode')
            as bank_transaction_code,
        cast(payload -> 'balanceAfterTransaction' -> 'balanceAmount' ->> 'amount' as numeric) as balance_after,
        partition_key,
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
        {{ surrogate_key(["'" ~ source_name ~ "'", 'account_ref', "'" ~ status ~ "'", 'record_key']) }} as transaction_key,
        '{{ source_name }}' as source,
        account_ref,
        source_transaction_id,
        entry_reference,
        end_to_end_id,
        '{{ status }}' as status,
        booking_date,
        value_date,
        -- Midnight UTC when the bank gives no time, as TrueLayer dates its postings, so every
        -- row of the canonical table has an instant to order by.
        coalesce(booking_date_time, cast(booking_date as timestamp) at time zone 'UTC') as booked_at,
        amount,
        currency,
        -- By the sign alone, never the other side as a fallback: banks fill in the holder's own
        -- account on the holder's side, which is not the counterparty.
        case when amount < 0 then creditor_name else debtor_name end as counterparty_name,
        case when amount < 0 then creditor_iban else debtor_iban end as counterparty_iban,
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
        partition_key as raw_partition_key,
        fetched_at
    from deduplicated
)

select * from final
{% endmacro %}

{#- A Berlin Group reference (an id or reference text) as text: null when absent, empty or
    NOTPROVIDED (SEPA's placeholder for "no reference"). -#}
{% macro bg_reference(expression) -%}
    nullif(nullif({{ expression }}, ''), 'NOTPROVIDED')
{%- endmacro %}
