"""Every raw table the project knows, by source.

They are created (empty) when the warehouse is bootstrapped, not on a source's first load:
dbt's staging views select from all of them, and a user who has connected only one bank must
still get a working `dbt build`. A test keeps this list, the dbt sources and the Dagster raw
assets in step.
"""

from __future__ import annotations

RAW_TABLES: dict[str, tuple[str, ...]] = {
    "truelayer": (
        "truelayer_accounts",
        "truelayer_balances",
        "truelayer_transactions",
        "truelayer_pending_transactions",
        "truelayer_cards",
        "truelayer_card_balances",
        "truelayer_card_transactions",
        "truelayer_card_pending_transactions",
    ),
    "berlin_group": (
        "berlin_group_accounts",
        "berlin_group_balances",
        "berlin_group_transactions",
        "berlin_group_pending_transactions",
    ),
    "revolut": (
        "revolut_accounts",
        "revolut_balances",
        "revolut_transactions",
        "revolut_pending_transactions",
    ),
    "gocardless": (
        "gocardless_accounts",
        "gocardless_balances",
        "gocardless_transactions",
        "gocardless_pending_transactions",
    ),
    "razorpay": (
        "razorpay_payments",
        "razorpay_refunds",
        "razorpay_settlements",
        "razorpay_settlement_recon",
    ),
    # Shared by every declarative REST bank (connectors/rest/*.yaml), keyed by (source, record_key):
    # a bank added as a YAML file needs no new table, staging model or union.
    "rest": (
        "rest_accounts",
        "rest_balances",
        "rest_transactions",
    ),
    "fibank": (
        "fibank_accounts",
        "fibank_balances",
        "fibank_transactions",
    ),
    # Statement files of every format (camt.053, MT940, CSV, JSON, OFX), keyed by (source = format,
    # file_id = the file's sha256): one row per statement and one per entry, as the parser read them.
    "files": (
        "file_statements",
        "file_entries",
    ),
    # The company's ledger from its accounting system's CSV/JSON exports (reconciliation's books,
    # when they are not a table bankflow can read): keyed by (file_id = the file's name, entry id).
    "ledger_export": ("ledger_export_entries",),
}


def all_raw_tables() -> list[str]:
    return [table for tables in RAW_TABLES.values() for table in tables]
