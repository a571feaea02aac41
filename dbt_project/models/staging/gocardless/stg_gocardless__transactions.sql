{{ bg_transactions_staging('gocardless', 'transactions', 'booked', transaction_id_fields=['internalTransactionId', 'transactionId']) }}
-- The relationships test on account_ref runs in this model's dbt step only when the accounts view is
-- built before it (buildable test selection); otherwise no step runs it and its check never reports.
-- depends_on: {{ ref('stg_gocardless__accounts') }}
