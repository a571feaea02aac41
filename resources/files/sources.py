"""Where statement files come from: an SFTP drop, or a local folder a person saves statements in.

Both list the same way and fetch into the content-addressed store, so the sensor, the asset and
`bankflow import` treat them alike; only the transport differs.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from resources.files.connections import LOCAL_CONNECTION, SftpConnection
from resources.files.store import FileStore, StoredFile


@dataclass(frozen=True)
class ListedFile:
    path: str
    size: int
    mtime: datetime

    @property
    def mtime_epoch(self) -> int:
        return int(self.mtime.timestamp())


class FileSource(Protocol):
    name: str

    def list_files(self) -> list[ListedFile]: ...

    def fetch(self, listed: ListedFile, store: FileStore) -> StoredFile: ...

    def archive(self, listed: ListedFile) -> str | None: ...


class LocalFolderSource:
    """Statements downloaded by hand from a bank's website, in a folder (or named one by one)."""

    name = LOCAL_CONNECTION

    def __init__(self, folder: Path | None = None, pattern: str = "*") -> None:
        self.folder = folder
        self.pattern = pattern

    def list_files(self) -> list[ListedFile]:
        if self.folder is None or not self.folder.is_dir():
            return []
        paths = sorted(
            p for p in self.folder.iterdir() if p.is_file() and fnmatch.fnmatch(p.name, self.pattern)
        )
        return [self.describe(path) for path in paths]

    @staticmethod
    def describe(path: Path) -> ListedFile:
        stat = path.resolve().stat()
        # Whole seconds, as SFTP reports them: the ledger compares sightings on it.
        return ListedFile(str(path.resolve()), stat.st_size, datetime.fromtimestamp(int(stat.st_mtime), UTC))

    def fetch(self, listed: ListedFile, store: FileStore) -> StoredFile:
        return store.copy_in(Path(listed.path))

    def archive(self, listed: ListedFile) -> str | None:
        return None


class SftpFileSource:
    """One SFTP drop: its remote directory and glob, over a pinned-host-key session."""

    def __init__(self, connection: SftpConnection, client: object) -> None:
        self.connection = connection
        self.name = connection.name
        self._client = client
        # One listing serves every fetch of a run (a backfill of a directory fetches hundreds).
        self._listing: dict[str, object] | None = None

    def list_files(self) -> list[ListedFile]:
        remote = self._client.list_files(self.connection.remote_dir, self.connection.glob)
        self._listing = {item.path: item for item in remote}
        return [ListedFile(item.path, item.size, item.mtime) for item in remote]

    def fetch(self, listed: ListedFile, store: FileStore) -> StoredFile:
        if self._listing is None or listed.path not in self._listing:
            self.list_files()
        item = (self._listing or {}).get(listed.path)
        if item is None:
            raise FileNotFoundError(f"{self.name}: {listed.path} is no longer on the server")
        downloaded = self._client.download(item, store.incoming)
        return store.adopt(Path(downloaded.path), downloaded.sha256)

    def archive(self, listed: ListedFile) -> str | None:
        if not self.connection.archive_dir:
            return None
        return self._client.move(listed.path, self.connection.archive_dir)


def sftp_endpoint(connection: SftpConnection, environ: Mapping[str, str], home: Path) -> object:
    """The connection's endpoint from the environment (secrets never leave it for a file)."""
    from resources.files.sftp import SftpEndpoint

    def env(suffix: str) -> str | None:
        return environ.get(connection.env_name(suffix)) or None

    known_hosts = env("KNOWN_HOSTS")
    return SftpEndpoint(
        host=env("HOST") or "",
        port=int(env("PORT") or 22),
        username=env("USERNAME") or "",
        password=env("PASSWORD"),
        private_key=env("PRIVATE_KEY"),
        known_hosts=Path(known_hosts) if known_hosts else home / "known_hosts",
        host_key_fingerprint=env("HOST_KEY_FINGERPRINT"),
        name=connection.name,
    )


@contextmanager
def open_sftp_source(
    connection: SftpConnection, environ: Mapping[str, str] | None = None, home: Path | None = None
) -> Iterator[SftpFileSource]:
    from resources.files.sftp import SftpClient

    environ = os.environ if environ is None else environ
    home = home or Path(environ.get("BANKFLOW_HOME") or ".bankflow")
    with SftpClient(sftp_endpoint(connection, environ, home)) as client:
        yield SftpFileSource(connection, client)
