with accounts as (
    select * from {{ ref('int_accounts_unified') }}
),

owners as (
    select * from {{ ref('int_account_owners') }}
),

latest as (
    -- Several sources can report one account: the latest report names it.
    {{ deduplicate('accounts', 'account_key', 'fetched_at desc, source, account_ref') }}
),

sources as (
    select
        account_key,
        string_agg(distinct source, ',' order by source) as sources,
        -- The holder from whichever source names one (the latest report that does): TrueLayer,
        -- for one, never does, while GoCardless may for the same account.
        (array_agg(owner_name order by fetched_at desc, source, account_ref)
            filter (where owner_name is not null))[1] as owner_name,
        min(fetched_at) as first_seen_at,
        max(fetched_at) as last_seen_at
    from accounts
    group by account_key
),

final as (
    select
        latest.account_key,
        latest.iban,
        latest.account_ref as provider_account_id,
        latest.currency,
        latest.display_name,
        latest.bank_name,
        latest.account_type,
        sources.owner_name,
        owners.owner,
        owners.owner_assigned_by,
        sources.sources,
        sources.first_seen_at,
        sources.last_seen_at
    from latest
    inner join sources on latest.account_key = sources.account_key
    left join owners on latest.account_key = owners.account_key
)

select * from final
