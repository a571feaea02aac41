"""Statement-file connections: one YAML file per SFTP drop in `connectors/sftp/` (plus every
directory in BANKFLOW_SFTP_CONNECTORS_DIR), secrets from the environment by a fixed convention.

A file names the drop, not the secrets:

    name: northwind                # [a-z0-9_]; the connection's name everywhere
    display_name: Northwind treasury statements
    remote_dir: /northwind
    glob: "*"                      # which files of remote_dir are statements
    archive_dir: null              # move a file here on the server once it landed (optional)
    bank: null                     # the bank's connector name, for accounts without an IBAN
    csv_mappings: []               # connectors/csv mappings to try on this drop's CSV files

and BANKFLOW_SFTP_<NAME>_HOST, _PORT (22), _USERNAME, _PASSWORD or _PRIVATE_KEY (PEM text),
_KNOWN_HOSTS (default <BANKFLOW_HOME>/known_hosts) or _HOST_KEY_FINGERPRINT ("SHA256:...") hold
where and how to log in. A connection is active when its host and username are set.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from resources.yaml_config import load_yaml_model

SFTP_CONNECTORS_DIR = Path(__file__).resolve().parents[2] / "connectors" / "sftp"
EXTRA_DIRS_ENV = "BANKFLOW_SFTP_CONNECTORS_DIR"
# A connection name for statements a person imports by hand (`bankflow import`, the watched folder).
LOCAL_CONNECTION = "local"


class SftpConnectionConfigError(ValueError):
    """A connection file that cannot be used; the message names the file and the field."""


class SftpConnection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,40}$")
    display_name: str | None = None
    remote_dir: str = "/"
    glob: str = "*"
    archive_dir: str | None = None
    bank: str | None = None
    csv_mappings: tuple[str, ...] = ()

    def env_name(self, suffix: str) -> str:
        return f"BANKFLOW_SFTP_{self.name.upper()}_{suffix}"

    def is_configured(self, environ: Mapping[str, str]) -> bool:
        return bool(environ.get(self.env_name("HOST")) and environ.get(self.env_name("USERNAME")))


def load_sftp_connection(path: Path) -> SftpConnection:
    return load_yaml_model(path, SftpConnection, SftpConnectionConfigError)


def sftp_connections(extra_dirs: Iterable[Path] | None = None) -> list[SftpConnection]:
    """Every connection file, the project's first; a name used twice is an error."""
    if extra_dirs is None:
        extra = os.environ.get(EXTRA_DIRS_ENV, "")
        extra_dirs = [Path(part) for part in extra.split(os.pathsep) if part]
    connections: dict[str, SftpConnection] = {}
    for directory in [SFTP_CONNECTORS_DIR, *extra_dirs]:
        for path in sorted(directory.glob("*.yaml")):
            connection = load_sftp_connection(path)
            if connection.name in connections or connection.name == LOCAL_CONNECTION:
                raise SftpConnectionConfigError(f"{path.name}: name {connection.name!r} is already used")
            connections[connection.name] = connection
    return list(connections.values())


_KEY = re.compile(r"^(?P<connection>[a-z][a-z0-9_]*):(?P<path>.+)@(?P<mtime>-?\d+):(?P<size>\d+)$")


def file_partition_key(connection: str, path: str, mtime_epoch: int, size: int) -> str:
    """The dynamic partition of one sighting of a file: connection, path, mtime and size."""
    return f"{connection}:{path}@{mtime_epoch}:{size}"


def parse_file_partition_key(key: str) -> tuple[str, str, int, int]:
    match = _KEY.match(key)
    if match is None:
        raise ValueError(f"not a statement-file partition key: {key!r}")
    return match["connection"], match["path"], int(match["mtime"]), int(match["size"])
