{{ truelayer_transactions_staging('transactions', 'booked') }}
