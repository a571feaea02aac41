-- One rate per calendar day and currency: days without a publication (weekends, TARGET holidays,
-- days after the latest file) take the last published rate. EUR itself is in it at 1, so every
-- conversion is one join.
with published as (
    select * from {{ ref('fx_rates_daily') }}
),

currencies as (
    select distinct currency from published
    union all
    select 'EUR'
),

calendar as (
    select cast(day as date) as rate_date
    from generate_series(
        (select min(rate_date) from published),
        -- Up to today: the last rate carries on until the next file arrives.
        greatest((select max(rate_date) from published), current_date),
        interval '1 day'
    ) as days (day)
),

grid as (
    select
        calendar.rate_date,
        currencies.currency,
        case when currencies.currency = 'EUR' then cast(1 as numeric) else published.rate_per_eur end
            as rate_per_eur,
        case when currencies.currency = 'EUR' then calendar.rate_date else published.rate_date end
            as published_date
    from calendar
    cross join currencies
    left join published
        on calendar.rate_date = published.rate_date
        and currencies.currency = published.currency
),

-- Postgres has no `ignore nulls`: number the runs that start at each published day, then every
-- day of a run takes its first (the published) row.
runs as (
    select
        grid.*,
        count(grid.rate_per_eur) over (partition by grid.currency order by grid.rate_date) as run_number
    from grid
),

filled as (
    select
        rate_date,
        currency,
        max(rate_per_eur) over (partition by currency, run_number) as rate_per_eur,
        max(published_date) over (partition by currency, run_number) as published_date
    from runs
),

reporting as (
    select
        rate_date,
        rate_per_eur as reporting_per_eur
    from filled
    where currency = '{{ var("reporting_currency") }}'
),

final as (
    select
        filled.rate_date,
        filled.currency,
        filled.rate_per_eur,
        -- Cross rate through EUR: reporting units per unit of this currency. Exact numeric
        -- division (Postgres keeps at least 16 significant digits); rounding happens only where
        -- an amount is converted.
        reporting.reporting_per_eur / filled.rate_per_eur as rate_to_reporting,
        filled.published_date,
        filled.published_date = filled.rate_date as is_published
    from filled
    inner join reporting on filled.rate_date = reporting.rate_date
    -- Days before a currency's first publication have no rate at all.
    where filled.rate_per_eur is not null
)

select * from final
