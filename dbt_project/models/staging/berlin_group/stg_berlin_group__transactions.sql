{{ berlin_group_transactions_staging('transactions', 'booked') }}
