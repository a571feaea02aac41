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

{#- How much of `needle` (a ledger entry's counterparty) appears in `haystack` (a bank line's
    counterparty, merchant and description): the share of the needle's trigrams found in the
    haystack's, 0-1. pg_trgm's word_similarity in spirit, written in SQL because the embedded
    Postgres ships without contrib extensions; only ever evaluated on candidate pairs that
    already agree on account, amount and dates. -#}
{% macro name_similarity(needle, haystack) -%}
    (
        select coalesce(
            round(count(hay.trigram)::numeric / nullif(count(*), 0), 3),
            0
        )
        from {{ name_trigrams(needle) }} as pin
        left join {{ name_trigrams(haystack) }} as hay on hay.trigram = pin.trigram
    )
{%- endmacro %}
