{{ berlin_group_transactions_staging('pending_transactions', 'pending') }}
