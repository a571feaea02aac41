with source as (
    select * from {{ source('ops', 'recon_resolutions') }}
),

renamed as (
    select
        exception_key,
        status as resolution_status,
        note as resolution_note,
        created_at as resolved_at
    from source
)

select * from renamed
