{{ bg_transactions_staging('gocardless', 'transactions', 'booked', transaction_id_fields=['internalTransactionId', 'transactionId']) }}
