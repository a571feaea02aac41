-- Per budget (seed budgets) and month: the cap in the reporting currency against net spend
-- (mart_spend_monthly, refunds netted) of the budget's category, or of its children for a parent
-- category. Months run from the owner's first month with booked movements to the month of the
-- as-of day (var as_of_date, else the build day), unspent months included. The current month is
-- projected linearly: spent so far / days elapsed (the as-of day counted) * days in the month;
-- a closed month's projection is what was spent.
with budgets as (
    select * from {{ ref('budgets') }}
),

spend as (
    select * from {{ ref('mart_spend_monthly') }}
),

cashflow as (
    select * from {{ ref('mart_cashflow_monthly') }}
),

fx_rates as (
    select * from {{ ref('int_fx_rates_filled') }}
),

as_of as (
    select
        {{ finance_as_of_date() }} as as_of_date,
        cast(date_trunc('month', {{ finance_as_of_date() }}) as date) as current_month_start_date
),

owner_first_months as (
    select
        owner_name,
        min(month_start_date) as first_month_start_date
    from cashflow
    group by owner_name
),

-- A budget caps a holder's spend over all their accounts, so it belongs to a bankflow owner only
-- when every account of the holder with movements is that owner's: a budget over two owners'
-- accounts (or some of no owner) would show one owner the other's spending.
holder_owners as (
    select
        owner_name,
        min(owner) as owner
    from cashflow
    group by owner_name
    having count(distinct owner) = 1 and count(owner) = count(*)
),

budget_months as (
    select
        budgets.owner_name,
        budgets.category,
        budgets.monthly_cap,
        budgets.currency as cap_currency,
        cast(months.month_start as date) as month_start_date
    from budgets
    cross join as_of
    left join owner_first_months on budgets.owner_name = owner_first_months.owner_name
    cross join lateral generate_series(
        least(coalesce(owner_first_months.first_month_start_date, as_of.current_month_start_date), as_of.current_month_start_date),
        as_of.current_month_start_date,
        interval '1 month'
    ) as months (month_start)
),

spent as (
    select
        budget_months.owner_name,
        budget_months.category,
        budget_months.month_start_date,
        coalesce(sum(spend.net_spend), 0) as spent
    from budget_months
    left join spend
        on budget_months.owner_name = spend.owner_name
        and budget_months.month_start_date = spend.month_start_date
        and (budget_months.category = spend.category or budget_months.category = spend.parent_category)
    group by budget_months.owner_name, budget_months.category, budget_months.month_start_date
),

calendar as (
    select
        budget_months.*,
        as_of.as_of_date,
        budget_months.month_start_date = as_of.current_month_start_date as is_current_month,
        cast(budget_months.month_start_date + interval '1 month' as date) - budget_months.month_start_date
            as days_in_month,
        case
            when budget_months.month_start_date = as_of.current_month_start_date
                then as_of.as_of_date - budget_months.month_start_date + 1
            else cast(budget_months.month_start_date + interval '1 month' as date) - budget_months.month_start_date
        end as days_elapsed,
        -- The cap converts at the month's last rate, or the as-of day's while the month runs.
        least(cast(budget_months.month_start_date + interval '1 month' as date) - 1, as_of.as_of_date)
            as cap_rate_date
    from budget_months
    cross join as_of
),

capped as (
    select
        calendar.*,
        case
            when calendar.cap_currency = '{{ var("reporting_currency") }}' then calendar.monthly_cap
            else round(calendar.monthly_cap * fx_rates.rate_to_reporting, 2)
        end as cap_reporting,
        spent.spent
    from calendar
    inner join spent
        on calendar.owner_name = spent.owner_name
        and calendar.category = spent.category
        and calendar.month_start_date = spent.month_start_date
    left join fx_rates
        on calendar.cap_currency = fx_rates.currency
        and calendar.cap_rate_date = fx_rates.rate_date
),

projected as (
    select
        capped.*,
        case
            when capped.is_current_month then round(capped.spent * capped.days_in_month / capped.days_elapsed, 2)
            else capped.spent
        end as projected_spend
    from capped
),

final as (
    select
        {{ surrogate_key(['projected.owner_name', 'projected.category', 'projected.month_start_date']) }}
            as budget_month_key,
        holder_owners.owner,
        projected.owner_name,
        projected.category,
        projected.month_start_date,
        '{{ var("reporting_currency") }}' as reporting_currency,
        projected.monthly_cap,
        projected.cap_currency,
        projected.cap_reporting,
        projected.spent,
        projected.cap_reporting - projected.spent as remaining,
        projected.spent > projected.cap_reporting as is_over_budget,
        projected.projected_spend,
        projected.projected_spend > projected.cap_reporting as is_projected_over_budget,
        projected.is_current_month,
        projected.days_elapsed,
        projected.days_in_month,
        projected.as_of_date
    from projected
    left join holder_owners on projected.owner_name = holder_owners.owner_name
)

select * from final
