with source as (
    select * from {{ source('ops', 'recon_verdicts') }}
),

renamed as (
    select
        transaction_key,
        counterpart_key,
        verdict,
        match_key,
        note,
        created_at as decided_at
    from source
)

select * from renamed
