-- A Fibank movement's booking day is the Europe/Sofia calendar day of its dateTime, whatever
-- the UTC day: the extract partitions by it and staging must agree (e.g. 00:30 +0300 is that day).
select
    transaction_key,
    booking_date,
    booked_at
from {{ ref('stg_fibank__transactions') }}
where booking_date <> cast(booked_at at time zone 'Europe/Sofia' as date)
