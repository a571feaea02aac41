"""The folder the accounting system drops its ledger exports in, as a Dagster resource."""

from __future__ import annotations

from pathlib import Path

import dagster as dg


class LedgerDropResource(dg.ConfigurableResource):
    """BANKFLOW_LEDGER_DROP_DIR: every CSV/JSON file in it is landed on each run (a file replaces
    its own earlier landing, so landing one again changes nothing)."""

    folder: str

    def path(self) -> Path:
        folder = Path(self.folder).expanduser()
        if not folder.is_dir():
            raise dg.Failure(
                description=f"The ledger drop folder {folder} does not exist: create it, or unset"
                " BANKFLOW_LEDGER_DROP_DIR to reconcile against the ledger table only."
            )
        return folder
