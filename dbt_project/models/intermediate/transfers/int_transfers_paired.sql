{#- Incremental: a day's run re-pairs only the legs its window can touch (macro
    transfer_pairs_rebuilt_from: the window, its lookback and one pairing range before it; and
    around int_transactions_rebuilt_days, the older days the union rebuilt) and keeps every other
    pair. The pre-hook drops the pairs being redone and those with a
    leg no longer booked in int_transactions_unioned; fct_transactions reads the result four to six
    times per run, so it is a table (a view re-ran the pairing over all history on each read). -#}
{{
    config(
        materialized='incremental',
        unique_key='transaction_key',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook=["{{ serialize_builds() }}", "{{ delete_repaired_transfers() }}"],
        post_hook="{{ analyze_full_build() }}",
        indexes=[{'columns': ['transaction_key']}, {'columns': ['booking_date']}],
    )
}}

{#- Greedy one-to-one pairing as rounds of mutual best matches: in each round a debit and a credit
    pair when each is the other's best remaining candidate under one global order of candidate
    pairs. The globally best pair is always mutual, so rounds repeated to a fixed point give exactly
    the greedy matching; a few rounds reach it in practice (unpaired leftovers stay unpaired). -#}
{%- set rounds = 4 -%}
{%- set max_days = var('transfer_max_days') | int -%}
{%- set tolerance = var('transfer_fx_tolerance') -%}
{#- The amount buckets below find every pair within the tolerance only in this range. -#}
{%- if tolerance | float <= 0 or tolerance | float >= 0.6 -%}
    {{ exceptions.raise_compiler_error("var transfer_fx_tolerance must be above 0 and below 0.6, got " ~ tolerance) }}
{%- endif -%}
{#- A holder's name spelled for comparison across sources: upper case, every run of
    non-alphanumerics one space, trimmed, null when empty ('ALICE MARTIN' = 'Alice  Martin'). -#}
{#- Words banks use for moving money between one's own accounts (English; Dutch van/naar). -#}
{%- set transfer_words = "'\\m(TRANSFER|TRANSFERRED|XFER|EXCHANGED?|TOP.?UP|SWEEP|ROUND.?UP|SAVINGS|OWN ACCOUNT|PAYMENT RECEIVED)\\M|^(TO|FROM|VAN|NAAR) '" -%}
{%- set comparable_name = "nullif(trim(regexp_replace(upper({}), '[^[:alnum:]]+', ' ', 'g')), '')" -%}

-- depends_on: {{ ref('int_transactions_rebuilt_days') }}
with transactions as (
    select * from {{ ref('int_transactions_unioned') }}
),

accounts as (
    select * from {{ ref('int_accounts_unified') }}
),

rates as (
    select * from {{ ref('int_fx_rates_filled') }}
),

-- One holder per real account, from whichever source names one; spelled for comparison.
account_owners as (
    select
        account_key,
        (array_agg({{ comparable_name.format('owner_name') }} order by fetched_at desc, source, account_ref)
            filter (where owner_name is not null))[1] as owner_key
    from accounts
    group by account_key
),

-- Every holder some source names: a leg's text naming one of them says who is on the other side.
holders as (
    select distinct owner_key as holder_key
    from account_owners
    where owner_key is not null
),

-- Booked rows only: a pending row's amount and day are provisional and its booked row replaces it.
legs as (
    select
        transactions.transaction_key,
        transactions.account_key,
        transactions.booking_date,
        transactions.amount,
        transactions.currency,
        account_owners.owner_key,
        {{ comparable_name.format('transactions.counterparty_name') }} as counterparty_key,
        {{ comparable_name.format('transactions.description') }} as description_key,
        -- The first run of 6+ digits in the text: banks often print one transfer reference on both legs.
        substring(transactions.description from '[0-9]{6,}') as text_reference,
        -- Words banks use for moving money between accounts (English, Dutch "van"/"naar").
        upper(transactions.description) ~ {{ transfer_words }} as has_transfer_text,
        transactions.amount / rates.rate_per_eur as amount_eur,
        floor(ln(abs(transactions.amount / rates.rate_per_eur)) / ln(1 + {{ tolerance }})) as amount_bucket
    from transactions
    left join account_owners on transactions.account_key = account_owners.account_key
    left join rates
        on transactions.currency = rates.currency
        and transactions.booking_date = rates.rate_date
    where transactions.status = 'booked'
        and transactions.account_key is not null
        and transactions.amount <> 0
        {%- if is_incremental() %}
        -- Legs that can pair with a leg being re-paired, and are in no pair kept from before.
        and (
            transactions.booking_date >= {{ transfer_pairs_rebuilt_from() }} - {{ max_days }}
            or {{ near_rebuilt_days('transactions.booking_date', 2 * max_days) }}
        )
        and not exists (
            select 1 from {{ this }} as kept where kept.transaction_key = transactions.transaction_key
        )
        {%- endif %}
),

legs_with_named_holder as (
    select
        legs.*,
        (
            select min(holders.holder_key)
            from holders
            where position(holders.holder_key in legs.description_key) > 0
        ) as named_holder_key
    from legs
),

debits as (
    select * from legs_with_named_holder where amount < 0
),

credits as (
    select * from legs_with_named_holder where amount > 0
),

-- Same currency: the same amount exactly. Across currencies: equal in euro within the tolerance
-- (the banks' own exchange rates differ from the reference rates).
amount_matches as (
    select
        debits.transaction_key as debit_key,
        credits.transaction_key as credit_key,
        debits.booking_date as debit_booking_date,
        credits.booking_date as credit_booking_date,
        debits.owner_key as debit_owner_key,
        credits.owner_key as credit_owner_key,
        debits.counterparty_key as debit_counterparty_key,
        credits.counterparty_key as credit_counterparty_key,
        debits.named_holder_key as debit_named_holder_key,
        credits.named_holder_key as credit_named_holder_key,
        debits.has_transfer_text or credits.has_transfer_text as has_transfer_text,
        debits.has_transfer_text and credits.has_transfer_text as has_transfer_text_on_both,
        coalesce(debits.text_reference = credits.text_reference, false) as has_shared_reference,
        abs(credits.booking_date - debits.booking_date) as day_gap,
        true as is_same_currency,
        cast(0 as numeric) as amount_gap
    -- Equality joins on each day offset: a range join on the dates would compare every debit with
    -- every credit of the same amount (or, across currencies, with every credit) in all history.
    from debits
    cross join generate_series(-{{ max_days }}, {{ max_days }}) as day_offset
    inner join credits
        on debits.currency = credits.currency
        and credits.amount = -debits.amount
        and credits.booking_date = debits.booking_date + day_offset
        and credits.account_key <> debits.account_key
    union all
    select
        debits.transaction_key,
        credits.transaction_key,
        debits.booking_date,
        credits.booking_date,
        debits.owner_key,
        credits.owner_key,
        debits.counterparty_key,
        credits.counterparty_key,
        debits.named_holder_key,
        credits.named_holder_key,
        debits.has_transfer_text or credits.has_transfer_text,
        debits.has_transfer_text and credits.has_transfer_text,
        coalesce(debits.text_reference = credits.text_reference, false),
        abs(credits.booking_date - debits.booking_date),
        false,
        -- Six decimals are plenty to rank by and keep the figure readable.
        round(abs(credits.amount_eur + debits.amount_eur) / -debits.amount_eur, 6)
    -- Within the tolerance the logs of the euro amounts differ by at most ln(1 + tolerance) up and
    -- -ln(1 - tolerance) down, so their buckets (ln(1 + tolerance) wide) differ by at most 2.
    from debits
    cross join generate_series(-{{ max_days }}, {{ max_days }}) as day_offset
    cross join generate_series(-2, 2) as bucket_offset
    inner join credits
        on credits.booking_date = debits.booking_date + day_offset
        and credits.amount_bucket = debits.amount_bucket + bucket_offset
        and debits.currency <> credits.currency
        and credits.account_key <> debits.account_key
        and abs(credits.amount_eur + debits.amount_eur) <= {{ tolerance }} * -debits.amount_eur
),

-- Money between two different holders is a payment, not an internal transfer. The payer is the
-- debit account's holder, else the counterparty the credit names, else a holder its text names;
-- the payee likewise. Unknown on either side counts as one owner (a deployment's accounts all
-- belong to its users). Equal amounts also meet by chance (a salary between two accounts whose
-- holders no source names), so a pair needs a sign of a transfer too: one holder named on both
-- accounts, one reference number printed on both legs, or transfer words in the texts.
candidates as (
    select
        debit_key,
        credit_key,
        debit_booking_date,
        credit_booking_date,
        day_gap,
        is_same_currency,
        amount_gap
    from amount_matches
    where coalesce(
        coalesce(debit_owner_key, credit_counterparty_key, credit_named_holder_key)
        = coalesce(credit_owner_key, debit_counterparty_key, debit_named_holder_key),
        true
    )
        and (
            coalesce(debit_owner_key = credit_owner_key, false)
            or has_shared_reference
            -- Exact equal amounts need the words on one leg; converted amounts, looser, on both
            -- (a "SEPA TRANSFER" to a supplier is within 3% of some receipt now and then).
            or (is_same_currency and has_transfer_text)
            or has_transfer_text_on_both
        )
),

pairs_found as (
    {{ mutual_best_pairs(
        'candidates',
        'debit_key',
        'credit_key',
        'day_gap, is_same_currency desc, amount_gap, debit_key, credit_key',
        rounds,
    ) }}
),

pairs as (
    select
        {{ surrogate_key(['pairs_found.debit_key', 'pairs_found.credit_key']) }} as transfer_group_key,
        pairs_found.*
    from pairs_found
),

final as (
    select
        debit_key as transaction_key,
        transfer_group_key,
        'out' as leg,
        debit_booking_date as booking_date,
        credit_key as partner_transaction_key,
        day_gap,
        amount_gap,
        pairing_round
    from pairs
    union all
    select
        credit_key,
        transfer_group_key,
        'in',
        credit_booking_date,
        debit_key,
        day_gap,
        amount_gap,
        pairing_round
    from pairs
)

select * from final
