"""The sandbox bank's SFTP drop: an asyncssh SSH/SFTP server on 127.0.0.1 in a background thread.

Written from the contract (bank-contracts.md section 5) like the HTTP sandbox banks, never from the
client in ``resources/files/sftp.py``. The SFTP root is chrooted to a local directory; files are
dropped into it with the plain functions at the bottom (``drop_file``, ``redrop_duplicate``,
``rename_after_drop``, ``corrupt``), and connection-level faults are switched on a shared
``SftpFaults`` object. Keys are generated at run time: nothing secret is ever committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hmac
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh

_STARTUP_TIMEOUT = 10.0
# Host keys the sandbox generates: what current banks' OpenSSH servers offer first.
_HOST_KEY_ALGORITHM = "ssh-ed25519"


@dataclass(frozen=True)
class SftpUser:
    """One login of the drop: a password, an authorised public key (OpenSSH one-line text), or both."""

    password: str | None = field(default=None, repr=False)
    authorized_public_key: str | None = None


@dataclass(frozen=True)
class SftpServerInfo:
    """Where the sandbox drop listens and the host key it presented when it started."""

    host: str
    port: int
    host_key_fingerprint: str  # OpenSSH form, "SHA256:<base64 without padding>"
    known_hosts_line: str  # "[host]:port ssh-ed25519 AAAA..."


@dataclass(frozen=True)
class UserKeyPair:
    """A user's SSH key pair: the OpenSSH private key text (a secret) and the one-line public key."""

    private_key: str = field(repr=False)
    public_key: str


def generate_host_key() -> asyncssh.SSHKey:
    """A fresh ed25519 host key for one server run."""
    return asyncssh.generate_private_key(_HOST_KEY_ALGORITHM)


def generate_user_key_pair() -> UserKeyPair:
    """A fresh ed25519 user key pair: OpenSSH PEM private key text and ``ssh-ed25519 AAAA...`` public key."""
    key = asyncssh.generate_private_key(_HOST_KEY_ALGORITHM)
    private_text = key.export_private_key("openssh").decode("ascii")
    public_text = key.export_public_key("openssh").decode("ascii").strip()
    return UserKeyPair(private_key=private_text, public_key=public_text)


def known_hosts_line(host: str, port: int, key: asyncssh.SSHKey) -> str:
    """The OpenSSH known_hosts line for ``key`` served at host:port (``[host]:port`` unless port 22)."""
    name = host if port == 22 else f"[{host}]:{port}"
    key_type, key_base64 = key.export_public_key("openssh").decode("ascii").split()[:2]
    return f"{name} {key_type} {key_base64}"


class SftpFaults:
    """Connection-level fault switches, shared between the test (any thread) and the server's loop.

    ``cut_after_bytes`` + ``cut_count``: the next ``cut_count`` files opened for reading are cut — the
    whole SSH connection is aborted without a goodbye — once serving the next read request would take
    the bytes served of that file past ``cut_after_bytes``. ``rotate_host_key()`` makes every server
    started with these faults present a new host key to the connections it accepts from then on.
    ``max_read_bytes`` answers every read request with at most that many bytes (a short read), as
    servers with a smaller read limit than the client asks for do (OpenSSH's sftp-server: 255 KiB).
    """

    def __init__(
        self, cut_after_bytes: int | None = None, cut_count: int = 0, max_read_bytes: int | None = None
    ) -> None:
        self._lock = threading.Lock()
        self.cut_after_bytes = cut_after_bytes
        self.cut_count = cut_count
        self.max_read_bytes = max_read_bytes
        self.cuts_made = 0
        self._host_key_listeners: list[Callable[[asyncssh.SSHKey], None]] = []

    def cut_reads(self, after_bytes: int, count: int = 1) -> None:
        """Cut the next ``count`` file reads after ``after_bytes`` bytes of the file were served."""
        with self._lock:
            self.cut_after_bytes, self.cut_count = after_bytes, count

    def clear(self) -> None:
        """Switch every connection fault off."""
        with self._lock:
            self.cut_after_bytes, self.cut_count = None, 0

    def claim_cut(self) -> int | None:
        """For a file being opened for reading: the byte limit to cut it at, or None (and count it)."""
        with self._lock:
            if self.cut_after_bytes is None or self.cut_count <= 0:
                return None
            self.cut_count -= 1
            self.cuts_made += 1
            return self.cut_after_bytes

    def rotate_host_key(self, new_key: asyncssh.SSHKey | None = None) -> str:
        """Present ``new_key`` (default: a fresh one) from now on; returns its SHA256 fingerprint."""
        key = new_key or generate_host_key()
        with self._lock:
            listeners = list(self._host_key_listeners)
        for listener in listeners:
            listener(key)
        return key.get_fingerprint("sha256")

    def _on_host_key_change(self, listener: Callable[[asyncssh.SSHKey], None]) -> Callable[[], None]:
        with self._lock:
            self._host_key_listeners.append(listener)

        def remove() -> None:
            with self._lock:
                self._host_key_listeners.remove(listener)

        return remove


class _DropSSHServer(asyncssh.SSHServer):
    """Password and public-key logins for the configured users; nothing else (no shell, no exec)."""

    def __init__(self, users: Mapping[str, SftpUser]) -> None:
        self._users = users

    def begin_auth(self, username: str) -> bool:
        return True  # every login must authenticate, even an unknown user (who then always fails)

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        user = self._users.get(username)
        if user is None or user.password is None:
            return False
        return hmac.compare_digest(user.password.encode(), password.encode())

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        user = self._users.get(username)
        if user is None or user.authorized_public_key is None:
            return False
        authorized = asyncssh.import_public_key(user.authorized_public_key)
        return authorized.public_data == key.public_data


class _DropSFTPServer(asyncssh.SFTPServer):
    """asyncssh's chrooted SFTP server plus the read-cutting fault."""

    def __init__(self, chan: asyncssh.SSHServerChannel, root: Path, faults: SftpFaults) -> None:
        super().__init__(chan, chroot=os.fsencode(root))
        self._faults = faults
        # open file object -> [bytes served, cut limit]
        self._cut_reads: dict[int, list[int]] = {}

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        file_obj = super().open(path, pflags, attrs)
        if pflags & asyncssh.FXF_READ:
            limit = self._faults.claim_cut()
            if limit is not None:
                self._cut_reads[id(file_obj)] = [0, limit]
        return file_obj

    def read(self, file_obj: object, offset: int, size: int) -> bytes:
        limit = self._faults.max_read_bytes
        data = super().read(file_obj, offset, size if limit is None else min(size, limit))
        cut = self._cut_reads.get(id(file_obj))
        if cut is not None:
            if cut[0] + len(data) > cut[1]:
                # Abort: no reply, no SSH disconnect message, the socket just closes (a dropped link).
                self.connection.abort()
                raise asyncssh.SFTPFailure("connection cut by the sandbox")
            cut[0] += len(data)
        return data

    def close(self, file_obj: object) -> None:
        self._cut_reads.pop(id(file_obj), None)
        super().close(file_obj)


@contextlib.contextmanager
def serve_sftp(
    root: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    host_key: asyncssh.SSHKey | None = None,
    users: Mapping[str, SftpUser],
    faults: SftpFaults | None = None,
) -> Iterator[SftpServerInfo]:
    """Serve ``root`` over SFTP (chrooted) on host:port (0 = a free port) in a background thread.

    Yields once the server accepts connections; on exit closes the listener and every connection and
    joins the thread. ``host_key`` defaults to a fresh ed25519 key; ``faults`` to no faults.
    """
    root = Path(root).resolve()
    if not root.is_dir():
        raise ValueError(f"SFTP root {root} is not a directory")
    faults = faults or SftpFaults()
    key = host_key or generate_host_key()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name=f"sandbox-sftp:{port}", daemon=True)
    thread.start()

    async def start() -> asyncssh.SSHAcceptor:
        return await asyncssh.listen(
            host,
            port,
            server_host_keys=[key],
            server_factory=lambda: _DropSSHServer(users),
            sftp_factory=lambda chan: _DropSFTPServer(chan, root, faults),
            # No shell, exec or port forwarding: the drop is SFTP only.
            allow_scp=False,
            agent_forwarding=False,
            allow_pty=False,
            x11_forwarding=False,
        )

    acceptor: asyncssh.SSHAcceptor | None = None

    def use_host_key(new_key: asyncssh.SSHKey) -> None:
        async def update() -> None:
            assert acceptor is not None  # registered only once listening
            acceptor.update(server_host_keys=[new_key])

        # Waits, so that a connection made after rotate_host_key() returns sees the new key.
        asyncio.run_coroutine_threadsafe(update(), loop).result(_STARTUP_TIMEOUT)

    remove_listener: Callable[[], None] | None = None
    try:
        acceptor = asyncio.run_coroutine_threadsafe(start(), loop).result(_STARTUP_TIMEOUT)
        remove_listener = faults._on_host_key_change(use_host_key)
        bound_port = acceptor.get_port()
        yield SftpServerInfo(
            host=host,
            port=bound_port,
            host_key_fingerprint=key.get_fingerprint("sha256"),
            known_hosts_line=known_hosts_line(host, bound_port, key),
        )
    finally:
        if remove_listener is not None:
            remove_listener()
        if acceptor is not None:
            listener = acceptor

            async def stop() -> None:
                listener.close()
                await listener.wait_closed()
                # Sessions still open (a client that never said goodbye) end with the server.
                sessions = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
                for task in sessions:
                    task.cancel()
                await asyncio.gather(*sessions, return_exceptions=True)

            asyncio.run_coroutine_threadsafe(stop(), loop).result(_STARTUP_TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=_STARTUP_TIMEOUT)
        if not thread.is_alive():
            loop.close()


# --- File-level switches: what banks do to their drop directories ------------------------------------


def drop_file(directory: Path, name: str, data: bytes, *, mtime: dt.datetime | None = None) -> Path:
    """Drop ``data`` as ``directory/name`` the way a bank's job does: written under a temporary name,
    then renamed into place, so a listing never sees half a file; mtime = ``mtime`` or now."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / name
    partial = directory / f".{name}.part"
    partial.write_bytes(data)
    if mtime is not None:
        stamp = mtime.timestamp()
        os.utime(partial, (stamp, stamp))
    os.replace(partial, target)
    return target


def redrop_duplicate(path: Path, new_name: str | None = None) -> Path:
    """The bank drops the same bytes again under a new name (default ``<stem>.redrop<suffix>``),
    a little later than the original: mtime = original + 60 s."""
    target = path.with_name(new_name or f"{path.stem}.redrop{path.suffix}")
    original_mtime = path.stat().st_mtime
    target.write_bytes(path.read_bytes())
    os.utime(target, (original_mtime + 60, original_mtime + 60))
    return target


def rename_after_drop(path: Path, new_name: str) -> Path:
    """The bank renames a file it already dropped (a rename keeps the file's mtime, as on a real host)."""
    target = path.with_name(new_name)
    os.rename(path, target)
    return target


def corrupt(path: Path) -> Path:
    """Truncate the file mid-way, like a transfer to the drop host that died; mtime = now (a write)."""
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.truncate(size // 2)
    os.utime(path)
    return path
