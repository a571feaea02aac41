{{ truelayer_transactions_staging('card_transactions', 'booked', card=true) }}
