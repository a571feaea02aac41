"""Declarative REST banks: one daily-partitioned extract asset per YAML file in connectors/rest/.

Every bank lands in the shared raw.rest_* tables (keyed by source = the bank's name), so a bank
added as a file needs no table, staging model or union of its own; in Dagster it still gets its own
assets (`raw_rest_<bank>_<entity>`) and its own pool, so one bank's limits and failures are its own.
"""

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import dagster as dg

from pipelines.partitions import booking_window, daily_partitions
from pipelines.sources.landing import land_extract, provider_failures, quarantine_check_spec, raw_asset_spec
from resources.providers.rest_bank import ACCOUNTS_TABLE, BALANCES_TABLE, TRANSACTIONS_TABLE, extract_window
from resources.providers.rest_bank_config import RestBank, configured_rest_banks
from resources.providers.rest_bank_resource import RestBanksResource
from resources.warehouse.resource import WarehouseResource

RAW_TABLES = {
    TRANSACTIONS_TABLE: "{bank} transactions in the seed's standard format (bank record kept under "
    "bank_record), partitioned by the bank-local date of their timestamp.",
    ACCOUNTS_TABLE: "{bank} accounts, latest report of each.",
    BALANCES_TABLE: "{bank} account balances, one snapshot per account and fetch day.",
}


def raw_asset_key(bank: RestBank, table: str) -> str:
    """raw_rest_<bank>_<entity>: one bank's rows of the shared raw.rest_<entity> table."""
    return f"raw_rest_{bank.name}_{table.removeprefix('rest_')}"


def rest_bank_asset(bank: RestBank) -> dg.AssetsDefinition:
    """The extract of one bank: accounts, balances and the transactions of the partition window."""
    asset_keys = {table: raw_asset_key(bank, table) for table in RAW_TABLES}

    @dg.multi_asset(
        specs=[
            raw_asset_spec(table, description.format(bank=bank.display_name), key=asset_keys[table])
            for table, description in RAW_TABLES.items()
        ],
        check_specs=[quarantine_check_spec(asset_keys[TRANSACTIONS_TABLE], bank.display_name)],
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=f"rest_{bank.name}",
        name=f"raw_rest_{bank.name}",
        description=f"Fetch {bank.display_name} accounts and the partition window's transactions "
        f"(declarative REST connector, {bank.source_file.name if bank.source_file else bank.name}) and "
        "land them in raw in one transaction: either every table is replaced or none is.",
    )
    def extract(
        context: dg.AssetExecutionContext, rest_banks: RestBanksResource, warehouse: WarehouseResource
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        window = booking_window(*context.partition_time_window)
        with provider_failures(), rest_banks.open_client(bank) as client:
            fetched = extract_window(client, window.first_day, window.last_day, datetime.now(UTC).date())
        yield from land_extract(context, warehouse, bank.name, fetched, asset_keys)

    return extract


def rest_bank_sources(banks: Sequence[RestBank]) -> dict[dg.AssetKey, list[dg.AssetKey]]:
    """The dbt source key of each shared raw.rest_* table -> every bank's asset of that table.

    dbt knows one source per table (`raw_rest_transactions`) and no asset materialises that key:
    the dbt translator makes models depend on the banks' assets instead.
    """
    return {
        dg.AssetKey(f"raw_{table}"): [dg.AssetKey(raw_asset_key(bank, table)) for bank in banks]
        for table in RAW_TABLES
    }


# The connector files of this code location (connectors/rest/ and BANKFLOW_REST_CONNECTORS_DIR),
# read once when it loads, like dbt's manifest; a bad file fails the load naming file and field.
REST_BANKS = configured_rest_banks()
REST_BANK_ASSETS = {bank.name: rest_bank_asset(bank) for bank in REST_BANKS}
