{{ bg_transactions_staging('gocardless', 'pending_transactions', 'pending', transaction_id_fields=['internalTransactionId', 'transactionId']) }}
