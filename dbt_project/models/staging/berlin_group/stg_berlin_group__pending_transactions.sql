{{ bg_transactions_staging('berlin_group', 'pending_transactions', 'pending', transaction_id_fields=['transactionId']) }}
