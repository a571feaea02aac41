{#- Reconciliation's text helpers. References and names are compared the way a person reading a
    bank statement would: case, spacing and punctuation do not matter, legal suffixes neither. -#}

{#- A reference reduced to upper-case letters and digits: 'inv 40213', 'INV-40213' and
    'INV/40213' all become 'INV40213'. -#}
{% macro normalised_reference(expression) -%}
    upper(regexp_replace({{ expression }}, '[^A-Za-z0-9]', '', 'g'))
{%- endmacro %}

{#- A party's name in upper case, punctuation and legal-form words dropped, single-spaced. -#}
{% macro normalised_name(expression) -%}
    btrim(regexp_replace(
        regexp_replace(
            regexp_replace(upper(coalesce({{ expression }}, '')), '[^A-Z0-9]+', ' ', 'g'),
            '\m(LTD|LIMITED|PVT|PRIVATE|LLP|PLC|INC|CO|GMBH|SA|SRL|AG|BV)\M', ' ', 'g'
        ),
        '\s+', ' ', 'g'
    ))
{%- endmacro %}

{#- The whole currency units (int_recon_bank_lines.amount_unit) an amount may take within a
    tolerance, as a lateral set `units (amount_unit)`: joining on it makes "amounts within the
    tolerance" an equi-join that a hash join can serve, the range condition then checked on the
    few rows it yields. -#}
{% macro amount_units(amount, tolerance) -%}
    generate_series(floor({{ amount }} - {{ tolerance }})::bigint, floor({{ amount }} + {{ tolerance }})::bigint)
        as units (amount_unit)
{%- endmacro %}

{#- The distinct word trigrams of a normalised text, pg_trgm's way (each word padded with two
    spaces before and one after), as a subquery yielding one `trigram` column. -#}
{% macro name_trigrams(expression) -%}
    (
        select distinct substr(padded.word, position, 3) as trigram
        from regexp_split_to_table({{ normalised_name(expression) }}, ' ') as words (word_text)
        cross join lateral (select '  ' || words.word_text || ' ' as word) as padded
        cross join lateral generate_series(1, length(padded.word) - 2) as position
        where words.word_text <> ''
    )
{%- endmacro %}

{#- A text's normalised words, each padded as pg_trgm pads it, run together: '  ACME   TRADING '.
    A trigram of a padded word occurs in it exactly where that word has it: the strings the
    joins make ('E  ', '   ') have two trailing spaces, which no word's trigram has. -#}
{% macro padded_words(expression) -%}
    ('  ' || replace({{ normalised_name(expression) }}, ' ', '   ') || ' ')
{%- endmacro %}

{#- Name similarity: the share (0-1, 3 decimals) of a ledger entry's name trigrams (`trigrams`, a
    text[] of name_trigrams) found in a bank line's text (`padded`, the padded_words of its
    counterparty, merchant and description); 0 for no trigrams. pg_trgm's word_similarity in
    spirit, written in SQL because the embedded Postgres ships without contrib extensions; only
    ever evaluated on pairs that already agree on account, amount and dates. Pass both as columns
    computed beforehand: an expression here is evaluated again for every trigram. -#}
{% macro trigram_share(trigrams, padded) -%}
    (
        select cast(coalesce(
            round((count(*) filter (where strpos({{ padded }}, needle.trigram) > 0))::numeric / nullif(count(*), 0), 3),
            0
        ) as numeric(4, 3))
        from unnest({{ trigrams }}) as needle (trigram)
    )
{%- endmacro %}

{#- Whether a balance reported for `balance_date` as of `reported_at` (UTC) holds the whole day's
    bookings: a statement's closing balance (as of the end of its day) or a snapshot taken in the
    last hour of the day. False when the time is unknown. -#}
{% macro is_end_of_day_report(reported_at, balance_date) -%}
    coalesce({{ reported_at }} >= cast({{ balance_date }} + 1 as timestamp) at time zone 'UTC' - interval '1 hour', false)
{%- endmacro %}
