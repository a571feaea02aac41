-- Anchor rule: each account's balance level comes from its latest bank-reported booked balance
-- (the latest day with a report; on that day the latest report, so a statement's end-of-day
-- closing beats an intraday API snapshot). Every other day is that anchor walked by the booked
-- movements in between: forwards adding each day's sum, backwards taking it off. Only days
-- bankflow holds movements or reports for are covered, so the walk never crosses unfetched days.
with bookings as (
    select * from {{ ref('fct_account_bookings_daily') }}
),

balances as (
    select * from {{ ref('fct_balances') }}
),

accounts as (
    select * from {{ ref('dim_accounts') }}
),

fx_rates as (
    select * from {{ ref('int_fx_rates_filled') }}
),

booked_per_day as (
    select
        account_key,
        booking_date as balance_date,
        booked_amount,
        transaction_count
    from bookings
),

reported as (
    select *
    from balances
    where current_balance is not null
),

-- One report per account and day: the latest (reported_at, else fetched_at); statements report as
-- of the end of their day, API snapshots as of the fetch.
reported_per_day as (
    {{ deduplicate('reported', 'account_key, balance_date', 'coalesce(reported_at, fetched_at) desc, source, balance_key') }}
),

reported_days as (
    select
        account_key,
        balance_date,
        source,
        current_balance,
        reported_at
    from reported_per_day
),

anchors as (
    {{ deduplicate('reported_days', 'account_key', 'balance_date desc') }}
),

account_days as (
    select
        account_key,
        min(balance_date) as first_day,
        max(balance_date) as last_day
    from (
        select account_key, balance_date from booked_per_day
        union all
        select account_key, balance_date from reported_days
    ) as known_days
    -- No report, no level: an account no source gave a balance for has no rows.
    where account_key in (select anchors.account_key from anchors)
    group by account_key
),

calendar as (
    select
        account_days.account_key,
        accounts.currency,
        cast(days.day as date) as balance_date
    from account_days
    inner join accounts on account_days.account_key = accounts.account_key
    cross join lateral generate_series(account_days.first_day, account_days.last_day, interval '1 day') as days (day)
),

-- The day's rate joins the calendar, before the walk's self-join hides from the planner how many
-- rows there are.
rated_calendar as (
    select
        calendar.*,
        case
            when calendar.currency = '{{ var("reporting_currency") }}' then cast(1 as numeric)
            else fx_rates.rate_to_reporting
        end as rate_to_reporting
    from calendar
    left join fx_rates
        on calendar.currency = fx_rates.currency
        and calendar.balance_date = fx_rates.rate_date
),

walked as (
    select
        rated_calendar.account_key,
        rated_calendar.currency,
        rated_calendar.balance_date,
        rated_calendar.rate_to_reporting,
        coalesce(booked_per_day.booked_amount, 0) as booked_amount,
        coalesce(booked_per_day.transaction_count, 0) as transaction_count,
        sum(coalesce(booked_per_day.booked_amount, 0)) over (
            partition by rated_calendar.account_key
            order by rated_calendar.balance_date
            rows between unbounded preceding and current row
        ) as cumulative_booked
    from rated_calendar
    left join booked_per_day
        on rated_calendar.account_key = booked_per_day.account_key
        and rated_calendar.balance_date = booked_per_day.balance_date
),

anchored as (
    select
        walked.*,
        anchors.balance_date as anchor_date,
        anchors.current_balance as anchor_balance,
        anchors.source as anchor_source,
        -- The anchor's own day is in the calendar: its running sum is the walk's zero point.
        anchors.current_balance + walked.cumulative_booked - anchor_day.cumulative_booked as derived_balance
    from walked
    inner join anchors on walked.account_key = anchors.account_key
    inner join walked as anchor_day
        on anchors.account_key = anchor_day.account_key
        and anchors.balance_date = anchor_day.balance_date
),

final as (
    select
        {{ surrogate_key(['anchored.account_key', 'anchored.balance_date']) }} as account_balance_day_key,
        anchored.account_key,
        anchored.balance_date,
        anchored.currency,
        anchored.booked_amount,
        anchored.transaction_count,
        anchored.derived_balance,
        reported_days.current_balance as reported_balance,
        reported_days.source as reported_source,
        reported_days.reported_at,
        reported_days.current_balance - anchored.derived_balance as balance_difference,
        case
            when anchored.currency = '{{ var("reporting_currency") }}' then anchored.derived_balance
            else round(anchored.derived_balance * anchored.rate_to_reporting, 2)
        end as derived_balance_reporting,
        anchored.anchor_date,
        anchored.anchor_balance,
        anchored.anchor_source
    from anchored
    left join reported_days
        on anchored.account_key = reported_days.account_key
        and anchored.balance_date = reported_days.balance_date
)

select * from final
