-- Each statement's own balance continuity, as its parser computed it when the file landed: the
-- opening balance (camt OPBD/PRCD, MT940 :60F:/:60M:) plus the statement's booked entries against
-- its closing balance (CLBD, :62F:/:62M:). One row per statement of each landed file: a
-- statement's record_key alone is not unique (a CSV statement has no id or period, so each day's
-- file has the same one), and a file replaced by a corrected version has left raw already.
with source as (
    select * from {{ source('files', 'statements') }}
),

statements as (
    select
        raw_id,
        {{ surrogate_key(['record_key', 'file_id']) }} as statement_check_key,
        record_key as statement_key,
        source,
        account_ref as file_account_id,
        payload ->> 'statement_id' as statement_id,
        {{ json_date("payload ->> 'period_start'") }} as period_start,
        {{ json_date("payload ->> 'period_end'") }} as period_end,
        upper(coalesce(payload ->> 'currency', payload -> 'balances' -> 0 ->> 'currency')) as currency,
        cast(payload -> 'balance_check' ->> 'opening' as numeric) as opening_balance,
        cast(payload -> 'balance_check' ->> 'entries_total' as numeric) as entries_total,
        cast(payload -> 'balance_check' ->> 'closing' as numeric) as closing_balance,
        cast(payload -> 'balance_check' ->> 'difference' as numeric) as balance_difference,
        cast(payload -> 'balance_check' ->> 'entry_count' as integer) as entry_count,
        payload -> 'balance_check' ->> 'status' as check_status,
        file_id,
        fetched_at
    from source
),

latest as (
    {{ deduplicate('statements', 'statement_check_key', 'fetched_at desc, raw_id desc') }}
),

final as (
    select
        statement_check_key,
        statement_key,
        source,
        -- The key stg_files__balances and stg_files__accounts give the statement's account.
        file_account_id || ':' || currency as account_ref,
        statement_id,
        period_start,
        period_end,
        currency,
        opening_balance,
        entries_total,
        closing_balance,
        balance_difference,
        entry_count,
        check_status,
        file_id,
        fetched_at
    from latest
)

select * from final
