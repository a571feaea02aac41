"""SFTP client for bank statement drops: pinned host keys, listing, downloads that restart a file when the
connection drops, and the archive move after landing.

Plain Python over paramiko, usable without Dagster. The host key is always checked before any
credential is sent: it must be in the configured known_hosts file (plain, hashed or ``[host]:port``
entries) or match the configured SHA256 fingerprint, otherwise the connection is refused
(``paramiko.RejectPolicy``). No password, key or other secret appears in a repr, log or exception.
"""

from __future__ import annotations

import datetime as dt
import errno
import fnmatch
import hashlib
import io
import logging
import os
import posixpath
import socket
import stat
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

logger = logging.getLogger(__name__)

DEFAULT_PORT = 22
TRUST_COMMAND = "bankflow sftp trust"

# Throughput, measured with bench/sftp.py (docs/benchmarks.md). paramiko's defaults (2 MiB window, 32 KiB
# packets and read requests) pay per-request and per-packet overhead on both ends: 2.2x OpenSSH's time.
# A bigger window helps only up to a point: paramiko's channel buffer moves its whole content on every
# read from it, so 32 MiB was slower than 8. Read requests of 255 KiB are what OpenSSH's sftp asks of
# OpenSSH's sftp-server (its SFTP_MAX_READ_LENGTH): a bigger request would come back short from such a
# server, and paramiko turns prefetching off at the first gap (still correct, but slow).
WINDOW_SIZE = 8 * 1024 * 1024
MAX_PACKET_SIZE = 128 * 1024
READ_REQUEST_SIZE = 255 * 1024


class SftpError(Exception):
    """An SFTP operation failed. Messages name host:port and the path, never a secret."""


class HostKeyRejected(SftpError):
    """The server's host key is not the pinned one: unknown, or changed since it was trusted."""


class SftpAuthError(SftpError):
    """The server refused the credentials (or the configured private key cannot be read)."""


class SftpConnectionError(SftpError):
    """The connection could not be made or dropped mid-operation: worth reconnecting and retrying."""


@dataclass(frozen=True)
class SftpEndpoint:
    """Where and how to log in to a bank's SFTP drop.

    ``private_key`` is the text of an unencrypted OpenSSH or PEM private key (ed25519, RSA or ECDSA).
    The host key is pinned by ``known_hosts`` (an OpenSSH known_hosts file) and/or
    ``host_key_fingerprint`` ("SHA256:..."); when both are given the fingerprint wins and
    known_hosts entries with another key are ignored. ``name`` is the connection's name in bankflow,
    used only to write the fix into error messages.
    """

    host: str
    port: int
    username: str
    password: str | None = field(default=None, repr=False)
    private_key: str | None = field(default=None, repr=False)
    known_hosts: Path | None = None
    host_key_fingerprint: str | None = None
    timeout: float = 30.0
    name: str | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def known_hosts_name(self) -> str:
        """How OpenSSH names this server in known_hosts: ``host``, or ``[host]:port`` off port 22."""
        return _known_hosts_name(self.host, self.port)


@dataclass(frozen=True)
class RemoteFile:
    """A regular file in a remote directory, as listed."""

    path: str
    name: str
    size: int
    mtime: dt.datetime  # aware, UTC


@dataclass(frozen=True)
class DownloadedFile:
    """A remote file landed locally, complete: its path, sha256 (hex) and size in bytes."""

    path: Path
    sha256: str
    size: int


@dataclass(frozen=True)
class PresentedHostKey:
    """The host key a server presents, as read by ``scan_host_key``."""

    key_type: str
    fingerprint: str  # "SHA256:..."
    known_hosts_line: str  # "[host]:port <key type> <base64>"


def _known_hosts_name(host: str, port: int) -> str:
    return host if port == DEFAULT_PORT else f"[{host}]:{port}"


def _normalise_fingerprint(fingerprint: str) -> str:
    # OpenSSH prints SHA256 fingerprints without base64 padding; accept either.
    algorithm, _, digest = fingerprint.strip().partition(":")
    return f"{algorithm.upper()}:{digest.rstrip('=')}"


def _fix(endpoint: SftpEndpoint) -> str:
    return f"if you trust this key, run `{TRUST_COMMAND} {endpoint.name or '<connection>'}`"


# --- Host keys --------------------------------------------------------------------------------------


class _PinnedHostKeyPolicy(paramiko.RejectPolicy):
    """Rejects every host key paramiko did not find in known_hosts, unless it is the pinned fingerprint.

    paramiko calls this only for a server with no known_hosts entry; a known server presenting another
    key raises ``BadHostKeyException`` before any policy is asked.
    """

    def __init__(self, endpoint: SftpEndpoint) -> None:
        self._endpoint = endpoint

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        pinned = self._endpoint.host_key_fingerprint
        if pinned is not None and _normalise_fingerprint(pinned) == key.fingerprint:
            return
        if pinned is not None:
            raise HostKeyRejected(
                f"HOST KEY CHANGED for {self._endpoint.address}: it presented a {key.get_name()} key "
                f"{key.fingerprint}, but the pinned fingerprint is {_normalise_fingerprint(pinned)}. "
                f"Check with the bank that the key was rotated; {_fix(self._endpoint)}."
            )
        where = self._endpoint.known_hosts or "no known_hosts file configured"
        raise HostKeyRejected(
            f"unknown host key for {self._endpoint.address}: it presented a {key.get_name()} key "
            f"{key.fingerprint}, which is not in known_hosts ({where}) and no fingerprint is pinned; "
            f"{_fix(self._endpoint)}."
        )


def has_pinned_host_key(endpoint: SftpEndpoint) -> bool:
    """Whether the server's key is pinned (a fingerprint, or a known_hosts entry), before connecting."""
    return bool(endpoint.host_key_fingerprint) or bool(_pinned_host_keys(endpoint))


def _pinned_host_keys(endpoint: SftpEndpoint) -> list[paramiko.PKey]:
    """The keys known_hosts holds for this server (hashed or plain entries), minus any that contradict
    the pinned fingerprint."""
    if endpoint.known_hosts is None or not endpoint.known_hosts.exists():
        return []
    try:
        known = paramiko.HostKeys(str(endpoint.known_hosts))
    except (paramiko.hostkeys.InvalidHostKey, OSError, UnicodeDecodeError) as exc:
        raise SftpError(f"known_hosts file {endpoint.known_hosts} cannot be read: {exc}") from exc
    entries = known.lookup(endpoint.known_hosts_name)
    keys = list(entries.values()) if entries is not None else []
    if endpoint.host_key_fingerprint is not None:
        pinned = _normalise_fingerprint(endpoint.host_key_fingerprint)
        keys = [key for key in keys if key.fingerprint == pinned]
    return keys


def scan_host_key(host: str, port: int = DEFAULT_PORT, timeout: float = 30.0) -> PresentedHostKey:
    """Connect to host:port and read the host key it presents, without authenticating."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise SftpConnectionError(f"could not connect to {host}:{port}: {exc}") from exc
    transport = paramiko.Transport(sock)
    try:
        transport.banner_timeout = timeout
        transport.start_client(timeout=timeout)
        key = transport.get_remote_server_key()
    except (paramiko.SSHException, EOFError, OSError) as exc:
        raise SftpConnectionError(f"could not read the host key of {host}:{port}: {exc}") from exc
    finally:
        transport.close()
    return PresentedHostKey(
        key_type=key.get_name(),
        fingerprint=key.fingerprint,
        known_hosts_line=f"{_known_hosts_name(host, port)} {key.get_name()} {key.get_base64()}",
    )


def trust_host_key(known_hosts_path: Path, presented: PresentedHostKey) -> None:
    """Record ``presented`` in ``known_hosts_path`` for its host:port, replacing every key held for that
    name before (plain or hashed entries; other hosts on a shared line are kept). A new file is 0600."""
    name = presented.known_hosts_line.split()[0]
    kept: list[str] = []
    if known_hosts_path.exists():
        for line in known_hosts_path.read_text().splitlines():
            kept.extend(_without_host(line, name))
    kept.append(presented.known_hosts_line)
    known_hosts_path.parent.mkdir(parents=True, exist_ok=True)
    mode = stat.S_IMODE(known_hosts_path.stat().st_mode) if known_hosts_path.exists() else 0o600
    fd, partial = tempfile.mkstemp(dir=known_hosts_path.parent, prefix=f".{known_hosts_path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w") as handle:
            handle.write("\n".join(kept) + "\n")
        os.replace(partial, known_hosts_path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def _without_host(line: str, name: str) -> list[str]:
    """``line`` with ``name`` taken out of its host list: [] if it named only that host."""
    stripped = line.strip()
    if not stripped or stripped.startswith(("#", "@")):
        return [line]  # comments and @cert-authority/@revoked markers are not ours to touch
    hosts, _, rest = stripped.partition(" ")
    names = hosts.split(",")
    remaining = [host for host in names if not _names_host(host, name)]
    if len(remaining) == len(names):
        return [line]
    return [f"{','.join(remaining)} {rest}"] if remaining else []


def _names_host(entry_host: str, name: str) -> bool:
    if entry_host.startswith("|1|"):
        return paramiko.HostKeys.hash_host(name, entry_host) == entry_host
    return entry_host == name


# --- The client -------------------------------------------------------------------------------------


def _load_private_key(text: str, endpoint: SftpEndpoint) -> paramiko.PKey:
    """A paramiko key from OpenSSH or PEM private key text (ed25519, RSA, ECDSA)."""
    data = text.encode()
    try:
        try:
            loaded = serialization.load_ssh_private_key(data, password=None)
        except ValueError:
            loaded = serialization.load_pem_private_key(data, password=None)
        key_class: type[paramiko.PKey]
        if isinstance(loaded, ed25519.Ed25519PrivateKey):
            key_class = paramiko.Ed25519Key
        elif isinstance(loaded, rsa.RSAPrivateKey):
            key_class = paramiko.RSAKey
        elif isinstance(loaded, ec.EllipticCurvePrivateKey):
            key_class = paramiko.ECDSAKey
        else:
            raise ValueError("unsupported key type")
        return key_class.from_private_key(io.StringIO(text))
    except (ValueError, TypeError, paramiko.SSHException):
        # `from None`: the parser's own exception may quote the key material.
        raise SftpAuthError(
            f"the private key configured for user {endpoint.username} at {endpoint.address} cannot be "
            "read: an unencrypted ed25519, RSA or ECDSA key in OpenSSH or PEM form is needed"
        ) from None


def _fast_transport(
    sock: socket.socket, disabled_algorithms: dict[str, list[str]] | None = None
) -> paramiko.Transport:
    return paramiko.Transport(
        sock,
        default_window_size=WINDOW_SIZE,
        default_max_packet_size=MAX_PACKET_SIZE,
        disabled_algorithms=disabled_algorithms,
    )


class SftpClient:
    """One SFTP session to an endpoint: ``with SftpClient(endpoint) as sftp: sftp.list_files("/out")``.

    A download whose connection drops reconnects and restarts that file, up to ``attempts`` times with
    exponential backoff and jitter (``backoff_initial`` .. ``backoff_max`` seconds).
    """

    def __init__(
        self,
        endpoint: SftpEndpoint,
        *,
        attempts: int = 4,
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
    ) -> None:
        self.endpoint = endpoint
        self._attempts = attempts
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._ssh: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None

    def __enter__(self) -> SftpClient:
        self.connect()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def connect(self) -> None:
        """Open the SSH connection (host key checked before any credential is sent) and the SFTP session."""
        self.close()
        endpoint = self.endpoint
        pkey = _load_private_key(endpoint.private_key, endpoint) if endpoint.private_key else None
        ssh = paramiko.SSHClient()
        for key in _pinned_host_keys(endpoint):
            ssh.get_host_keys().add(endpoint.known_hosts_name, key.get_name(), key)
        ssh.set_missing_host_key_policy(_PinnedHostKeyPolicy(endpoint))
        try:
            ssh.connect(
                endpoint.host,
                port=endpoint.port,
                username=endpoint.username,
                password=endpoint.password,
                pkey=pkey,
                timeout=endpoint.timeout,
                banner_timeout=endpoint.timeout,
                auth_timeout=endpoint.timeout,
                channel_timeout=endpoint.timeout,
                allow_agent=False,
                look_for_keys=False,
                transport_factory=_fast_transport,
            )
            sftp = ssh.open_sftp()
        except HostKeyRejected:
            ssh.close()
            raise
        except paramiko.BadHostKeyException as exc:
            ssh.close()
            raise HostKeyRejected(
                f"HOST KEY CHANGED for {endpoint.address}: it presented a {exc.key.get_name()} key "
                f"{exc.key.fingerprint}, but known_hosts ({endpoint.known_hosts}) holds "
                f"{exc.expected_key.fingerprint} for it. This is either a planned key rotation by the bank "
                f"or someone in between; check with the bank, then {_fix(endpoint)}."
            ) from None
        except paramiko.AuthenticationException:
            ssh.close()
            raise SftpAuthError(
                f"authentication failed for user {endpoint.username} at {endpoint.address}"
            ) from None
        except (paramiko.SSHException, EOFError, OSError) as exc:
            ssh.close()
            raise SftpConnectionError(f"could not connect to {endpoint.address}: {_describe(exc)}") from exc
        # A stalled server must not hang a run: every SFTP reply has to come within the timeout.
        sftp.get_channel().settimeout(endpoint.timeout)
        self._ssh, self._sftp = ssh, sftp

    def close(self) -> None:
        """Close the session and the connection (safe to call twice, or after a dropped connection)."""
        sftp, ssh = self._sftp, self._ssh
        self._sftp = self._ssh = None
        for closeable in (sftp, ssh):
            if closeable is not None:
                try:
                    closeable.close()
                except (OSError, EOFError, paramiko.SSHException):
                    pass  # already gone: closing a dead connection has nothing left to do

    def _session(self) -> paramiko.SFTPClient:
        """The open SFTP session, reconnecting first if there is none or its connection died."""
        transport = self._ssh.get_transport() if self._ssh is not None else None
        if self._sftp is None or transport is None or not transport.is_active():
            self.connect()
        assert self._sftp is not None
        return self._sftp

    def _retrying(self, what: str) -> Retrying:
        def log_retry(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome is not None else None
            logger.warning(
                "SFTP %s at %s interrupted (%s); reconnecting, attempt %d of %d",
                what,
                self.endpoint.address,
                exc,
                state.attempt_number + 1,
                self._attempts,
            )

        return Retrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential_jitter(
                multiplier=self._backoff_initial, jitter=self._backoff_initial, max=self._backoff_max
            ),
            retry=retry_if_exception_type(SftpConnectionError),
            before_sleep=log_retry,
            reraise=True,
        )

    def list_files(self, directory: str, pattern: str = "*") -> list[RemoteFile]:
        """Regular files in ``directory`` whose name matches the glob ``pattern`` (case-sensitive),
        sorted by path."""
        return self._retrying(f"listing of {directory}")(self._list_files_once, directory, pattern)

    def _list_files_once(self, directory: str, pattern: str) -> list[RemoteFile]:
        sftp = self._session()
        with self._connection_errors(f"listing {directory}"):
            entries = sftp.listdir_attr(directory)
        files = [
            RemoteFile(
                path=posixpath.join(directory, entry.filename),
                name=entry.filename,
                size=entry.st_size or 0,
                mtime=dt.datetime.fromtimestamp(entry.st_mtime or 0, tz=dt.UTC),
            )
            for entry in entries
            if entry.st_mode is not None
            and stat.S_ISREG(entry.st_mode)
            and fnmatch.fnmatchcase(entry.filename, pattern)
        ]
        return sorted(files, key=lambda remote: remote.path)

    def download(self, remote: RemoteFile, dest_dir: Path) -> DownloadedFile:
        """Fetch ``remote`` into ``dest_dir/<name>`` (mtime kept), with its sha256 computed on the way.

        The bytes go to a temporary file in ``dest_dir`` that is renamed into place only when complete
        and of the listed size; on a dropped connection the file is fetched again from the start. No
        partial file is ever left behind or returned.
        """
        dest_dir.mkdir(parents=True, exist_ok=True)
        try:
            return self._retrying(f"download of {remote.path}")(self._download_once, remote, dest_dir)
        except SftpConnectionError as exc:
            raise SftpError(
                f"download of {remote.path} from {self.endpoint.address} failed after {self._attempts} "
                f"attempts: {exc}"
            ) from exc

    def _download_once(self, remote: RemoteFile, dest_dir: Path) -> DownloadedFile:
        sftp = self._session()
        fd, partial_name = tempfile.mkstemp(dir=dest_dir, prefix=f".{remote.name}.", suffix=".part")
        partial = Path(partial_name)
        try:
            digest = hashlib.sha256()
            size = 0
            with (
                os.fdopen(fd, "wb") as out,
                ThreadPoolExecutor(1, thread_name_prefix="sftp-sink") as sink,
                self._connection_errors(f"downloading {remote.path}"),
            ):

                def keep(chunk: bytes) -> None:
                    digest.update(chunk)
                    out.write(chunk)

                with sftp.open(remote.path, "rb") as source:
                    # paramiko's class default is 32 KiB per read request; see READ_REQUEST_SIZE.
                    source.MAX_REQUEST_SIZE = READ_REQUEST_SIZE
                    source.prefetch(remote.size)
                    # Hashing and writing one chunk (both release the GIL) overlap with receiving the
                    # next; one chunk in flight keeps memory bounded and the order of writes intact.
                    kept: Future[None] | None = None
                    while chunk := source.read(READ_REQUEST_SIZE):
                        if kept is not None:
                            kept.result()
                        kept = sink.submit(keep, chunk)
                        size += len(chunk)
                    if kept is not None:
                        kept.result()
            if size != remote.size:
                raise SftpError(
                    f"{remote.path} at {self.endpoint.address} changed size during download (listed "
                    f"{remote.size} bytes, read {size}); it is probably still being written"
                )
            target = dest_dir / remote.name
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        stamp = remote.mtime.timestamp()
        os.utime(target, (stamp, stamp))
        return DownloadedFile(path=target, sha256=digest.hexdigest(), size=size)

    def move(self, remote_path: str, archive_dir: str) -> str:
        """Move ``remote_path`` into ``archive_dir`` (created if missing) with an atomic posix rename;
        returns the new remote path. Not retried: a rename whose reply was lost may have happened."""
        sftp = self._session()
        target = posixpath.join(archive_dir, posixpath.basename(remote_path))
        with self._connection_errors(f"moving {remote_path} to {archive_dir}"):
            self._make_dirs(sftp, archive_dir)
            sftp.posix_rename(remote_path, target)
        return target

    @staticmethod
    def _make_dirs(sftp: paramiko.SFTPClient, directory: str) -> None:
        path = "/" if directory.startswith("/") else ""
        for part in [part for part in directory.split("/") if part]:
            path = posixpath.join(path, part)
            try:
                sftp.stat(path)
            except FileNotFoundError:
                try:
                    sftp.mkdir(path)
                except OSError:
                    sftp.stat(path)  # made meanwhile by someone else is fine; anything else raises

    def _connection_errors(self, doing: str) -> _ConnectionErrors:
        return _ConnectionErrors(self, doing)

    def _connection_alive(self) -> bool:
        transport = self._ssh.get_transport() if self._ssh is not None else None
        return transport is not None and transport.is_active()


class _ConnectionErrors:
    """Turns what paramiko raises into SftpErrors: a dropped or stalled connection becomes the retryable
    SftpConnectionError (and the dead session is closed); a refusal by the server (no such file, no
    permission) a plain SftpError."""

    def __init__(self, client: SftpClient, doing: str) -> None:
        self._client, self._doing = client, doing

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None or isinstance(exc, SftpError):
            return
        address = self._client.endpoint.address
        lost = isinstance(exc, EOFError | TimeoutError | ConnectionError | paramiko.SSHException) or (
            isinstance(exc, OSError) and not self._client._connection_alive()
        )
        if lost:
            self._client.close()
            raise SftpConnectionError(
                f"connection to {address} lost while {self._doing}: {_describe(exc)}"
            ) from exc
        if isinstance(exc, OSError):
            raise SftpError(f"{self._doing} at {address} failed: {_describe(exc)}") from exc


def _describe(exc: BaseException) -> str:
    """A short, secret-free description of a transport or SFTP exception."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOENT, errno.EACCES, errno.EPERM):
        return os.strerror(exc.errno)
    text = str(exc).strip().rstrip(":")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
