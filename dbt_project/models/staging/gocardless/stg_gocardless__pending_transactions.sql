{{ gocardless_transactions_staging('pending_transactions', 'pending') }}
