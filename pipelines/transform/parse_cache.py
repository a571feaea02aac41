"""One dbt parse per warehouse connection, so every dbt step after it parses partially.

dagster-dbt copies `target/partial_parse.msgpack` into each invocation's own target folder, but
dbt discards it when the profile's rendered connection differs from the one it was parsed with
("Unable to do partial parsing because profile has changed"). `make setup` parses without a
warehouse, so every step of every run re-parsed the whole project (about 4 s each, five dbt steps
per run). Parsing once with the connection the steps use makes the copy valid for them. The
incremental step passes its window as --vars and still parses whole: dbt ties the saved parse to
the command line's vars.
"""

import hashlib
import os
import subprocess
import threading

from dagster_dbt import DbtCliResource

_parsed: set[str] = set()
_lock = threading.Lock()
CONNECTION_ENV_PREFIX = "BANKFLOW_DBT_"


def parse_for_current_connection(dbt: DbtCliResource) -> None:
    """Parse the project into its target folder once per connection (read from os.environ, where
    `dbt_connection` put it). A failed parse is left to the step itself to report."""
    connection = sorted((k, v) for k, v in os.environ.items() if k.startswith(CONNECTION_ENV_PREFIX))
    key = hashlib.sha256(repr(connection).encode()).hexdigest()
    with _lock:
        if key in _parsed:
            return
        command = [dbt.dbt_executable, "parse", "--project-dir", dbt.project_dir, "--quiet"]
        if dbt.profiles_dir:
            command += ["--profiles-dir", dbt.profiles_dir]
        completed = subprocess.run(command, cwd=dbt.project_dir, capture_output=True, check=False)  # noqa: S603
        if completed.returncode == 0:
            _parsed.add(key)
