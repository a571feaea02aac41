{{ incremental_staging_config('files', 'entries') }}

with source as (
    {{ restaged_landings('files', 'entries') }}
),

typed as (
    select
        raw_id,
        source,
        account_ref as file_account_id,
        record_key,
        payload ->> 'status' as entry_status,
        -- Some banks give only a value date (ClearBank camt.053.001.11): that is the booking day then.
        coalesce({{ json_date("payload ->> 'booking_date'") }}, {{ json_date("payload ->> 'value_date'") }})
            as booking_date,
        {{ json_date("payload ->> 'value_date'") }} as value_date,
        {{ json_timestamp("payload ->> 'booked_at'") }} as file_booked_at,
        -- ->> gives the JSON number's own text: the cast is exact.
        cast(payload ->> 'amount' as numeric) as amount,
        upper(payload ->> 'currency') as currency,
        upper(coalesce(payload ->> 'account_currency', payload ->> 'currency')) as account_currency,
        payload ->> 'entry_reference' as entry_reference,
        payload ->> 'bank_reference' as bank_reference,
        nullif(payload ->> 'end_to_end_id', 'NOTPROVIDED') as end_to_end_id,
        payload ->> 'counterparty_name' as counterparty_name,
        upper(replace(payload ->> 'counterparty_iban', ' ', '')) as counterparty_iban,
        payload ->> 'description' as description,
        payload ->> 'bank_transaction_code' as bank_transaction_code,
        (payload ->> 'is_reversal')::boolean as is_reversal,
        partition_key,
        fetched_at
    from source
),

latest as (
    -- The same entry in two files (a daily and a monthly statement, a corrected file): the
    -- latest fetch wins.
    {{ deduplicate('typed', 'source, file_account_id, account_currency, record_key', 'fetched_at desc, raw_id desc') }}
),

movements as (
    -- Info lines (zero-amount notices, MT940 info records) and rejected items never moved money.
    select * from latest
    where entry_status in ('booked', 'pending')
),

final as (
    select
        {{ surrogate_key(['source', 'file_account_id', 'account_currency', 'record_key']) }} as transaction_key,
        source,
        -- One IBAN can carry a statement per currency (ClearBank): the currency is part of the account.
        file_account_id || ':' || account_currency as account_ref,
        coalesce(bank_reference, entry_reference, record_key) as source_transaction_id,
        entry_reference,
        end_to_end_id,
        entry_status as status,
        booking_date,
        value_date,
        -- A statement gives a day, rarely a time: midnight UTC of the booking day then.
        coalesce(file_booked_at, cast(booking_date as timestamp) at time zone 'UTC') as booked_at,
        amount,
        currency,
        counterparty_name,
        counterparty_iban,
        cast(null as text) as merchant_name,
        cast(null as text) as mcc,
        description,
        case when amount < 0 then 'DEBIT' else 'CREDIT' end as transaction_type,
        bank_transaction_code,
        cast(null as text) as provider_category,
        cast(null as text) as provider_subcategory,
        cast(null as numeric) as balance_after,
        record_key as raw_record_key,
        partition_key as raw_partition_key,
        fetched_at
    from movements
)

select * from final
