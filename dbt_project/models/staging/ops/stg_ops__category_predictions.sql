with source as (
    select * from {{ source('ops', 'category_predictions') }}
),

renamed as (
    select
        transaction_key,
        category,
        confidence,
        model_version,
        trained_rows,
        predicted_at
    from source
)

select * from renamed
