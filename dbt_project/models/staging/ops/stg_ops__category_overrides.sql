with source as (
    select * from {{ source('ops', 'category_overrides') }}
),

renamed as (
    select
        transaction_key,
        lower(trim(category)) as category,
        note,
        created_at as overridden_at
    from source
)

select * from renamed
