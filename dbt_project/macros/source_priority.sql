{#- Which report of one real movement fct_transactions keeps when several sources report it
    (int_transactions_unioned), best first:
      1  the bank's own API: berlin_group, revolut, fibank and every declarative REST bank
         (connectors/rest/*.yaml, an open set of names, hence the else branch) — the account
         holder's bank is the first-hand record;
      2  truelayer, 3 gocardless: aggregators pass a bank's data on; TrueLayer before GoCardless
         because its ids are stable across pulls (normalised_provider_transaction_id) while
         GoCardless warns that transactionId may vary, and a kept key is what overrides,
         matches and pending lineage hang on;
      4..8 statement files, the richer format first: camt.053 (structured parties and references),
         MT940 (a :86: text), OFX, CSV, JSON. A file arrives after the APIs (the next morning),
         so an API's row, there first, stays.
    Ties (one source through two connections) are broken by source and account_ref. -#}
{% macro source_priority(source_column) -%}
    case {{ source_column }}
        when 'truelayer' then 2
        when 'gocardless' then 3
        when 'camt053' then 4
        when 'mt940' then 5
        when 'ofx' then 6
        when 'csv' then 7
        when 'json' then 8
        else 1
    end
{%- endmacro %}
