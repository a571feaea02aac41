"""The sandbox banks' statement drop, served: the world's daily statement files on an SFTP server.

One login (`bankflow`, key auth with a key generated for this run) sees `/northwind` (Lloyds
camt.053, Barclays MT940) and `/kaveri` (ICICI CSV, SBI JSON). The demo, `make ui` and the tests
use it; a user points bankflow at it exactly as at a bank's SFTP host.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import tempfile
from pathlib import Path
from types import TracebackType

from sandbox.sftp_server import (
    SftpFaults,
    SftpServerInfo,
    SftpUser,
    UserKeyPair,
    generate_user_key_pair,
    serve_sftp,
)
from sandbox.statement_files import write_drop
from sandbox.world import World

DROP_USER = "bankflow"


class SandboxDrop:
    """``with SandboxDrop(world, first_day, last_day) as drop:`` serves the world's statements of
    those days; ``drop.info`` says where, ``drop.user_key`` how to log in, ``drop.faults`` breaks it."""

    def __init__(
        self,
        world: World,
        first_day: dt.date,
        last_day: dt.date,
        root: Path | None = None,
        faults: SftpFaults | None = None,
    ) -> None:
        self.world = world
        self.first_day = first_day
        self.last_day = last_day
        self._root = root
        self.faults = faults or SftpFaults()
        self.user_key: UserKeyPair = generate_user_key_pair()
        self.info: SftpServerInfo | None = None
        self.root: Path | None = None
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> SandboxDrop:
        try:
            if self._root is None:
                self.root = Path(
                    self._stack.enter_context(tempfile.TemporaryDirectory(prefix="bankflow-drop-"))
                )
            else:
                self.root = self._root
                self.root.mkdir(parents=True, exist_ok=True)
            write_drop(self.world, self.root, self.first_day, self.last_day)
            users = {DROP_USER: SftpUser(authorized_public_key=self.user_key.public_key)}
            self.info = self._stack.enter_context(serve_sftp(self.root, users=users, faults=self.faults))
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stack.close()
