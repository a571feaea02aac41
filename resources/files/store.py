"""The local store of statement originals, addressed by content.

Every fetched or imported file is kept here under its sha256 before it is registered, so a
quarantined file's original is always at hand, a parse can be re-run without fetching again, and
the same bytes are stored once however often they are dropped.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

_CHUNK = 1 << 20


@dataclass(frozen=True)
class StoredFile:
    path: Path
    sha256: str
    size: int


class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def incoming(self) -> Path:
        """Where downloads are streamed before their digest is known (same filesystem: the move is atomic)."""
        path = self.root / "incoming"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def path_for(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def adopt(self, temp_path: Path, sha256: str) -> StoredFile:
        """Move a finished download into the store (or drop it: the same bytes are there already)."""
        target = self.path_for(sha256)
        size = temp_path.stat().st_size
        if target.exists():
            temp_path.unlink()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temp_path, target)
        return StoredFile(target, sha256, size)

    def copy_in(self, source: Path) -> StoredFile:
        """Copy a local file into the store, hashing it on the way."""
        digest = hashlib.sha256()
        with (
            source.open("rb") as reader,
            tempfile.NamedTemporaryFile(dir=self.incoming, delete=False) as temp,
        ):
            try:
                while chunk := reader.read(_CHUNK):
                    digest.update(chunk)
                    temp.write(chunk)
            except BaseException:
                Path(temp.name).unlink(missing_ok=True)
                raise
        return self.adopt(Path(temp.name), digest.hexdigest())
