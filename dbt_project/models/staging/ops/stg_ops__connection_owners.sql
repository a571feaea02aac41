-- Only the owner columns: the encrypted tokens never enter a model.
with source as (
    select connection_name, provider, owner from {{ source('ops', 'connections') }}
),

renamed as (
    select
        connection_name,
        provider as source,
        owner
    from source
    where owner is not null
)

select * from renamed
