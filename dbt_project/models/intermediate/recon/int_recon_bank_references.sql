-- The references a bank line carries, one row per distinct word: the whole reference fields and
-- every word of the description, also split at '-' and '/' (banks glue references to names:
-- 'NEFT DR-SURAT SILK MILLS-INV2236'). Only words with a digit and four characters or more can be
-- references; that keeps this table a few rows per line and the joins on it equi-joins.
with lines as (
    select * from {{ ref('int_recon_bank_lines') }}
),

texts as (
    select transaction_key, entry_reference as text_value from lines where entry_reference is not null
    union all
    select transaction_key, end_to_end_id from lines where end_to_end_id is not null
    union all
    select transaction_key, description from lines where description is not null
),

-- A reference field is also a word whole, spaces and all ('INV 40213' as the bank keyed it).
whole_fields as (
    select transaction_key, btrim(entry_reference) as word from lines where entry_reference is not null
    union all
    select transaction_key, btrim(end_to_end_id) from lines where end_to_end_id is not null
),

words as (
    select transaction_key, word from whole_fields
    union
    select distinct texts.transaction_key, word
    from texts
    cross join lateral regexp_split_to_table(btrim(texts.text_value), '\s+') as whole (chunk)
    cross join lateral (
        select whole.chunk as word
        union all
        select part from regexp_split_to_table(whole.chunk, '[-/]') as parts (part)
    ) as words
),

final as (
    select
        transaction_key,
        word as reference,
        {{ normalised_reference('word') }} as reference_normalised
    from words
    where word ~ '[0-9]' and length({{ normalised_reference('word') }}) >= 4
)

select * from final
