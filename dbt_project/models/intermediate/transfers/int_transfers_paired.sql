{#- A table, not a view: fct_transactions reads the pairing four times in an incremental run (its
    join, the restated keys twice, the post-hook) and its tests twice more; as a view each read
    re-ran the pairing rounds over all of history. Nothing is built on it as a view, so dbt's table
    swap (drop ... cascade) takes no dependent view with it. -#}
{{ config(materialized='table', indexes=[{'columns': ['transaction_key']}]) }}

{#- Greedy one-to-one pairing as rounds of mutual best matches: in each round a debit and a credit
    pair when each is the other's best remaining candidate under one global order of candidate
    pairs. The globally best pair is always mutual, so rounds repeated to a fixed point give exactly
    the greedy matching; a few rounds reach it in practice (unpaired leftovers stay unpaired). -#}
{%- set rounds = 4 -%}
{%- set max_days = var('transfer_max_days') | int -%}
{%- set tolerance = var('transfer_fx_tolerance') -%}
{#- A holder's name spelled for comparison across sources: upper case, every run of
    non-alphanumerics one space, trimmed, null when empty ('ALICE MARTIN' = 'Alice  Martin'). -#}
{#- Words banks use for moving money between one's own accounts (English; Dutch van/naar). -#}
{%- set transfer_words = "'\\m(TRANSFER|TRANSFERRED|XFER|EXCHANGED?|TOP.?UP|SWEEP|ROUND.?UP|SAVINGS|OWN ACCOUNT|PAYMENT RECEIVED)\\M|^(TO|FROM|VAN|NAAR) '" -%}
{%- set comparable_name = "nullif(trim(regexp_replace(upper({}), '[^[:alnum:]]+', ' ', 'g')), '')" -%}

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
        transactions.amount / rates.rate_per_eur as amount_eur
    from transactions
    left join account_owners on transactions.account_key = account_owners.account_key
    left join rates
        on transactions.currency = rates.currency
        and transactions.booking_date = rates.rate_date
    where transactions.status = 'booked'
        and transactions.account_key is not null
        and transactions.amount <> 0
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
    from debits
    inner join credits
        on debits.currency = credits.currency
        and credits.amount = -debits.amount
        and credits.account_key <> debits.account_key
        and credits.booking_date between debits.booking_date - {{ max_days }} and debits.booking_date + {{ max_days }}
    union all
    select
        debits.transaction_key,
        credits.transaction_key,
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
    from debits
    inner join credits
        on debits.currency <> credits.currency
        and credits.account_key <> debits.account_key
        and credits.booking_date between debits.booking_date - {{ max_days }} and debits.booking_date + {{ max_days }}
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

{% for round in range(1, rounds + 1) %}
round_{{ round }}_ranked as (
    select
        candidates.*,
        row_number() over (
            partition by debit_key order by day_gap, is_same_currency desc, amount_gap, debit_key, credit_key
        ) as debit_rank,
        row_number() over (
            partition by credit_key order by day_gap, is_same_currency desc, amount_gap, debit_key, credit_key
        ) as credit_rank
    from candidates
    {%- if round > 1 %}
    where not exists (
        select 1 from paired_before_{{ round }} where paired_before_{{ round }}.debit_key = candidates.debit_key
    )
        and not exists (
            select 1 from paired_before_{{ round }} where paired_before_{{ round }}.credit_key = candidates.credit_key
        )
    {%- endif %}
),

round_{{ round }}_pairs as (
    select
        debit_key,
        credit_key,
        day_gap,
        amount_gap,
        {{ round }} as pairing_round
    from round_{{ round }}_ranked
    where debit_rank = 1 and credit_rank = 1
),

paired_before_{{ round + 1 }} as (
    {%- if round > 1 %}
    select * from paired_before_{{ round }}
    union all
    {%- endif %}
    select * from round_{{ round }}_pairs
),
{% endfor %}

pairs as (
    select
        {{ surrogate_key(['debit_key', 'credit_key']) }} as transfer_group_key,
        paired_before_{{ rounds + 1 }}.*
    from paired_before_{{ rounds + 1 }}
),

final as (
    select
        debit_key as transaction_key,
        transfer_group_key,
        'out' as leg,
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
        debit_key,
        day_gap,
        amount_gap,
        pairing_round
    from pairs
)

select * from final
