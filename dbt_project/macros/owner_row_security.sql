{#- Row-level security on a mart (post-hook of every mart): each owner's BI role sees only that
    owner's rows (resources/warehouse/owner_access.py creates the roles and the bi_access
    functions called here).

    dim_accounts carries the owner (int_account_owners); a mart keyed by account_key shows the
    rows of the accounts its reader sees in dim_accounts, so an owner changed there reaches every
    mart on dim_accounts' next build, without rebuilding an incremental one. Members of
    bankflow_all_owners (the shared BI role) see every row, those of no account too (a ledger
    entry no bank line matched).

    dbt re-creates a table mart on every build, which drops its policy and grants: the hook puts
    them back in the same transaction, so no reader ever sees the table without them. A mart with
    neither column is left alone and never granted to owners. The warehouse user owns the tables,
    and a table's owner is not subject to its policies: dbt and the pipeline read everything. -#}
{% macro owner_row_security() -%}
    {%- if execute -%}
        {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | list -%}
        {%- if 'owner' in columns or 'account_key' in columns -%}
            {%- if 'owner' in columns -%}
                {%- set visible = 'owner = any (bi_access.visible_owners())' -%}
            {%- else -%}
                {%- set visible = 'account_key in (select bi_access.visible_account_keys())' -%}
            {%- endif %}
alter table {{ this }} enable row level security;
drop policy if exists owner_rows on {{ this }};
create policy owner_rows on {{ this }} for select using (
    (select bi_access.sees_every_owner()) or {{ visible }}
);
do $$
begin
    if exists (select from pg_catalog.pg_roles where rolname = 'bankflow_owners') then
        grant select on table {{ this }} to bankflow_owners;
    end if;
end
$$
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
