"""Statement files as one Dagster resource: the local store, the parsers, the drops.

Each SFTP drop's settings are its YAML file (`connectors/sftp/`), its secrets the environment
variables named by convention, read when a run opens the drop, never kept in a config.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from resources.files.connections import LOCAL_CONNECTION, SftpConnection, sftp_connections
from resources.files.sources import FileSource, LocalFolderSource, open_sftp_source
from resources.files.store import FileStore
from resources.statements.formats import default_parsers, load_csv_mappings
from resources.statements.model import StatementParser

CSV_MAPPINGS_DIR = Path(__file__).resolve().parents[2] / "connectors" / "csv"


class StatementFilesResource(dg.ConfigurableResource):
    """Where originals are kept (`<home>/files`), which local folder is watched, and the drops."""

    home: str = ".bankflow"
    # A folder a person saves downloaded statements in (else BANKFLOW_IMPORT_DIR); none: not watched.
    import_dir: str | None = None
    # More directories (os.pathsep-separated) of CSV mapping files besides connectors/csv/
    # (else BANKFLOW_CSV_MAPPINGS_DIR).
    csv_mappings_dir: str | None = None

    def _import_dir(self) -> str | None:
        return self.import_dir or os.environ.get("BANKFLOW_IMPORT_DIR") or None

    def store(self) -> FileStore:
        return FileStore(Path(self.home) / "files")

    def connections(self) -> list[SftpConnection]:
        """The SFTP drops whose host and username are set in the environment."""
        return [c for c in sftp_connections() if c.is_configured(os.environ)]

    def source_names(self) -> list[str]:
        names = [c.name for c in self.connections()]
        return [*names, LOCAL_CONNECTION] if self._import_dir() else names

    def parsers(self, connection: str | None = None) -> list[StatementParser]:
        """Every format's parser; CSV only with the mappings the drop names (all for a local file)."""
        extra_dirs = self.csv_mappings_dir or os.environ.get("BANKFLOW_CSV_MAPPINGS_DIR") or ""
        extra = [Path(p) for p in extra_dirs.split(os.pathsep) if p]
        mappings = load_csv_mappings([CSV_MAPPINGS_DIR, *extra])
        drop = next((c for c in self.connections() if c.name == connection), None)
        if drop is not None:
            mappings = [m for m in mappings if m.name in drop.csv_mappings]
        return default_parsers(mappings)

    def bank_of(self, connection: str) -> str | None:
        return next((c.bank for c in self.connections() if c.name == connection), None)

    @contextmanager
    def open_source(self, name: str) -> Iterator[FileSource]:
        if name == LOCAL_CONNECTION:
            folder = self._import_dir()
            yield LocalFolderSource(Path(folder) if folder else None)
            return
        connection = next((c for c in self.connections() if c.name == name), None)
        if connection is None:
            raise dg.Failure(
                description=f"statement drop {name!r} is not configured: set "
                f"BANKFLOW_SFTP_{name.upper()}_HOST and _USERNAME (connectors/sftp/{name}.yaml)",
                allow_retries=False,
            )
        with open_sftp_source(connection, home=Path(self.home)) as source:
            yield source
