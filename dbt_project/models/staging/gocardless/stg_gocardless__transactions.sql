{{ gocardless_transactions_staging('transactions', 'booked') }}
