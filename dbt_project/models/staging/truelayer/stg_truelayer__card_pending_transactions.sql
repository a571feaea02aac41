{{ truelayer_transactions_staging('card_pending_transactions', 'pending', card=true) }}
