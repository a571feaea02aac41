-- One row per (bank line, counterpart) of each match: a settlement match and a one-to-one ledger
-- match are one row, a bank line paying several ledger entries is one row per entry under one
-- match_key, and so is each bank line of an entry paid in parts. `bankflow recon unmatch
-- <match_key>` undoes a match for good.
with matched as (
    select * from {{ ref('int_recon_matched') }}
),

lines as (
    select * from {{ ref('int_recon_bank_lines') }}
),

final as (
    select
        {{ surrogate_key(['matched.match_key', 'matched.transaction_key', 'matched.counterpart_key']) }} as match_line_key,
        matched.match_key,
        matched.counterpart_kind as match_kind,
        matched.rule_id,
        matched.method,
        matched.score,
        matched.transaction_key,
        matched.account_key,
        lines.booking_date,
        matched.bank_amount,
        matched.currency,
        matched.counterpart_key,
        substr(matched.counterpart_key, strpos(matched.counterpart_key, ':') + 1) as counterpart_id,
        matched.counterpart_amount,
        matched.match_counterpart_amount,
        matched.match_bank_amount,
        matched.match_bank_amount - matched.match_counterpart_amount as amount_difference,
        matched.day_offset,
        matched.explanation
    from matched
    inner join lines on lines.transaction_key = matched.transaction_key
)

select * from final
