{{ bg_transactions_staging('berlin_group', 'transactions', 'booked', transaction_id_fields=['transactionId']) }}
