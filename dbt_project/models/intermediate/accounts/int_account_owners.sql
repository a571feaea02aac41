-- The owner of each real account: its own assignment, else its connection's owner. A source's
-- accounts belong to its connection's owner only while the source's owned connections agree on
-- one: raw rows do not say which of two connections of a source fetched them, so with two owners
-- only an account's own assignment can tell.
with accounts as (
    select * from {{ ref('int_accounts_unified') }}
),

account_assignments as (
    select * from {{ ref('stg_ops__account_owners') }}
),

connection_owners as (
    select * from {{ ref('stg_ops__connection_owners') }}
),

source_owners as (
    select
        source,
        min(owner) as owner
    from connection_owners
    group by source
    having count(distinct owner) = 1
),

candidates as (
    select
        accounts.account_key,
        accounts.source,
        accounts.account_ref,
        accounts.fetched_at,
        coalesce(account_assignments.owner, source_owners.owner) as owner,
        case when account_assignments.owner is not null then 'account' else 'connection' end
            as owner_assigned_by
    from accounts
    left join account_assignments
        on accounts.source = account_assignments.source
        and accounts.account_ref = account_assignments.account_ref
    left join source_owners on accounts.source = source_owners.source
    where coalesce(account_assignments.owner, source_owners.owner) is not null
),

-- Two sources may report one real account: an account's own assignment wins, then the
-- latest report's connection.
ranked as (
    {{ deduplicate(
        'candidates', 'account_key',
        "owner_assigned_by = 'account' desc, fetched_at desc, source, account_ref"
    ) }}
),

final as (
    select
        account_key,
        owner,
        owner_assigned_by
    from ranked
)

select * from final
