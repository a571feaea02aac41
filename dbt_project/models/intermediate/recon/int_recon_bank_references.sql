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

-- Only a chunk with a digit can be or hold a reference: the rest (most of a description's
-- words) is dropped before anything is split further or deduplicated.
chunks as (
    select texts.transaction_key, whole.chunk
    from texts
    cross join lateral regexp_split_to_table(btrim(texts.text_value), '\s+') as whole (chunk)
    where whole.chunk ~ '[0-9]'
),

words as (
    select transaction_key, word from whole_fields where word ~ '[0-9]'
    union
    select transaction_key, chunk from chunks
    union
    select chunks.transaction_key, parts.part
    from chunks
    cross join lateral regexp_split_to_table(chunks.chunk, '[-/]') as parts (part)
    where chunks.chunk ~ '[-/]' and parts.part ~ '[0-9]'
),

normalised as (
    select transaction_key, word, {{ normalised_reference('word') }} as reference_normalised
    from words
),

final as (
    select
        transaction_key,
        word as reference,
        reference_normalised
    from normalised
    where length(reference_normalised) >= 4
)

select * from final
