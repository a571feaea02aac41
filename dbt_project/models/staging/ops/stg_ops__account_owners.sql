with source as (
    select * from {{ source('ops', 'account_owners') }}
),

renamed as (
    select
        source,
        account_ref,
        owner,
        assigned_at
    from source
)

select * from renamed
