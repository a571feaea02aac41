"""The SFTP client (resources/files/sftp.py) against the sandbox SSH server (sandbox/sftp_server.py), both
real, on a free port of 127.0.0.1 with a temporary drop directory."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import paramiko
import pytest

from resources.files.sftp import (
    DownloadedFile,
    HostKeyRejected,
    RemoteFile,
    SftpAuthError,
    SftpClient,
    SftpEndpoint,
    SftpError,
    scan_host_key,
    trust_host_key,
)
from sandbox.sftp_server import (
    SftpFaults,
    SftpServerInfo,
    SftpUser,
    UserKeyPair,
    corrupt,
    drop_file,
    generate_host_key,
    generate_user_key_pair,
    redrop_duplicate,
    rename_after_drop,
    serve_sftp,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLES = REPO_ROOT.parent / "shared" / "samples"
USERNAME = "acme-treasury"
PASSWORD = "correct horse battery staple"
DROP_MTIME = dt.datetime(2025, 6, 14, 23, 5, 17, tzinfo=dt.UTC)
# Bigger than the client's read request and chunk sizes, and not a multiple of either.
BIG_FILE_SIZE = 9 * 1024 * 1024 + 12345


@pytest.fixture(scope="module")
def user_keys() -> UserKeyPair:
    return generate_user_key_pair()


@pytest.fixture
def drop_root(tmp_path: Path) -> Path:
    root = tmp_path / "drop"
    root.mkdir()
    return root


@pytest.fixture
def faults() -> SftpFaults:
    return SftpFaults()


@pytest.fixture
def host_key() -> asyncssh.SSHKey:
    return generate_host_key()


@pytest.fixture
def sftp_server(
    drop_root: Path, user_keys: UserKeyPair, faults: SftpFaults, host_key: asyncssh.SSHKey
) -> Iterator[SftpServerInfo]:
    users = {USERNAME: SftpUser(password=PASSWORD, authorized_public_key=user_keys.public_key)}
    with serve_sftp(drop_root, users=users, faults=faults, host_key=host_key) as info:
        yield info


@pytest.fixture
def known_hosts(tmp_path: Path, sftp_server: SftpServerInfo) -> Path:
    path = tmp_path / "known_hosts"
    path.write_text(sftp_server.known_hosts_line + "\n")
    return path


@pytest.fixture
def endpoint(sftp_server: SftpServerInfo, known_hosts: Path) -> SftpEndpoint:
    return SftpEndpoint(
        host=sftp_server.host,
        port=sftp_server.port,
        username=USERNAME,
        password=PASSWORD,
        known_hosts=known_hosts,
        timeout=20.0,
        name="acme-drop",
    )


def fast_retries(endpoint: SftpEndpoint, attempts: int = 3) -> SftpClient:
    return SftpClient(endpoint, attempts=attempts, backoff_initial=0.01, backoff_max=0.05)


def with_fields(endpoint: SftpEndpoint, **changes: object) -> SftpEndpoint:
    return dataclasses.replace(endpoint, **changes)  # type: ignore[arg-type]


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def leftovers(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


# --- Listing and downloading ------------------------------------------------------------------------


def test_list_files_matches_the_glob_and_lists_regular_files_only_sorted(
    drop_root: Path, endpoint: SftpEndpoint
) -> None:
    outgoing = drop_root / "outgoing"
    drop_file(outgoing, "stmt-20250614.sta", b":20:B\n", mtime=DROP_MTIME)
    drop_file(outgoing, "stmt-20250613.sta", b":20:A\n", mtime=DROP_MTIME - dt.timedelta(days=1))
    drop_file(outgoing, "camt053-20250614.xml", b"<Document/>", mtime=DROP_MTIME)
    (outgoing / "old.sta").mkdir()  # a directory whose name matches is not a file
    (outgoing / "link.sta").symlink_to(outgoing / "stmt-20250614.sta")  # nor is a symlink

    with SftpClient(endpoint) as sftp:
        statements = sftp.list_files("/outgoing", "*.sta")
        everything = sftp.list_files("/outgoing")

    assert statements == [
        RemoteFile("/outgoing/stmt-20250613.sta", "stmt-20250613.sta", 6, DROP_MTIME - dt.timedelta(days=1)),
        RemoteFile("/outgoing/stmt-20250614.sta", "stmt-20250614.sta", 6, DROP_MTIME),
    ]
    assert [remote.name for remote in everything] == [
        "camt053-20250614.xml",
        "stmt-20250613.sta",
        "stmt-20250614.sta",
    ]
    assert all(remote.mtime.tzinfo is dt.UTC for remote in everything)


def test_download_lands_the_exact_bytes_with_their_sha256(
    drop_root: Path, endpoint: SftpEndpoint, tmp_path: Path
) -> None:
    data = os.urandom(BIG_FILE_SIZE)
    drop_file(drop_root / "outgoing", "big.bin", data, mtime=DROP_MTIME)
    landing = tmp_path / "landing"

    with SftpClient(endpoint) as sftp:
        (remote,) = sftp.list_files("/outgoing", "big.bin")
        downloaded = sftp.download(remote, landing)

    assert downloaded == DownloadedFile(landing / "big.bin", sha256_of(data), len(data))
    assert downloaded.path.read_bytes() == data
    assert downloaded.path.stat().st_mtime == DROP_MTIME.timestamp()
    assert leftovers(landing) == ["big.bin"]  # no temporary file left beside it


def test_download_from_a_server_that_answers_reads_short(
    drop_root: Path, endpoint: SftpEndpoint, faults: SftpFaults, tmp_path: Path
) -> None:
    data = os.urandom(BIG_FILE_SIZE // 4)
    drop_file(drop_root / "outgoing", "big.bin", data)
    faults.max_read_bytes = 32 * 1024 - 7  # smaller than, and not dividing, what the client asks for
    with SftpClient(endpoint) as sftp:
        (remote,) = sftp.list_files("/outgoing")
        downloaded = sftp.download(remote, tmp_path / "landing")
    assert downloaded.sha256 == sha256_of(data) and downloaded.path.read_bytes() == data


def test_download_of_a_real_camt053_sample(drop_root: Path, endpoint: SftpEndpoint, tmp_path: Path) -> None:
    sample = SAMPLES / "camt053-iso20022js" / "ing_example_camt.xml"
    drop_file(drop_root / "outgoing", sample.name, sample.read_bytes(), mtime=DROP_MTIME)

    with SftpClient(endpoint) as sftp:
        (remote,) = sftp.list_files("/outgoing", "*.xml")
        downloaded = sftp.download(remote, tmp_path / "landing")

    assert downloaded.path.read_bytes() == sample.read_bytes()
    assert downloaded.sha256 == sha256_of(sample.read_bytes())


def test_sandbox_drop_switches_redrop_rename_and_corrupt(
    drop_root: Path, endpoint: SftpEndpoint, tmp_path: Path
) -> None:
    outgoing = drop_root / "outgoing"
    original = drop_file(outgoing, "stmt.sta", b":20:REF\n:61:250614C100,00NTRFNONREF\n", mtime=DROP_MTIME)
    duplicate = redrop_duplicate(original)
    renamed = rename_after_drop(original, "stmt-renamed.sta")
    torn = drop_file(outgoing, "torn.sta", b"x" * 1000, mtime=DROP_MTIME)
    corrupt(torn)

    with SftpClient(endpoint) as sftp:
        listed = {remote.name: remote for remote in sftp.list_files("/outgoing")}
        landed = {name: sftp.download(remote, tmp_path / "landing") for name, remote in listed.items()}

    assert sorted(listed) == sorted([duplicate.name, renamed.name, "torn.sta"])
    assert landed[duplicate.name].sha256 == landed[renamed.name].sha256  # same bytes, new name
    assert listed[renamed.name].mtime == DROP_MTIME  # a rename keeps the drop's mtime
    assert listed[duplicate.name].mtime > DROP_MTIME  # the re-drop came later
    assert listed["torn.sta"].size == 500


def test_a_file_that_changes_size_after_listing_is_refused_and_nothing_is_left(
    drop_root: Path, endpoint: SftpEndpoint, tmp_path: Path
) -> None:
    path = drop_file(drop_root / "outgoing", "growing.sta", b"y" * 100_000)
    landing = tmp_path / "landing"
    with SftpClient(endpoint) as sftp:
        (remote,) = sftp.list_files("/outgoing")
        corrupt(path)
        with pytest.raises(SftpError, match="changed size"):
            sftp.download(remote, landing)
    assert leftovers(landing) == []


def test_move_to_archive_creates_the_directory_and_renames(drop_root: Path, endpoint: SftpEndpoint) -> None:
    drop_file(drop_root / "outgoing", "stmt.sta", b":20:REF\n")
    with SftpClient(endpoint) as sftp:
        moved_to = sftp.move("/outgoing/stmt.sta", "/archive/2025/06")
        assert sftp.list_files("/outgoing") == []
        assert [remote.path for remote in sftp.list_files("/archive/2025/06")] == [moved_to]
    assert moved_to == "/archive/2025/06/stmt.sta"
    assert (drop_root / "archive" / "2025" / "06" / "stmt.sta").read_bytes() == b":20:REF\n"


def test_move_of_a_missing_file_is_a_clear_error(endpoint: SftpEndpoint) -> None:
    with SftpClient(endpoint) as sftp, pytest.raises(SftpError, match="moving /outgoing/gone.sta"):
        sftp.move("/outgoing/gone.sta", "/archive")


# --- Authentication ---------------------------------------------------------------------------------


@pytest.mark.parametrize("credential", ["password", "private_key"])
def test_password_and_key_auth_both_log_in(
    drop_root: Path, endpoint: SftpEndpoint, user_keys: UserKeyPair, credential: str
) -> None:
    drop_file(drop_root / "outgoing", "stmt.sta", b":20:REF\n")
    if credential == "password":
        login = endpoint
    else:
        login = with_fields(endpoint, password=None, private_key=user_keys.private_key)
    with SftpClient(login) as sftp:
        assert [remote.name for remote in sftp.list_files("/outgoing")] == ["stmt.sta"]


def test_wrong_password_is_an_auth_error_naming_user_and_host(endpoint: SftpEndpoint) -> None:
    wrong = with_fields(endpoint, password="not-the-password-123")
    with pytest.raises(SftpAuthError) as caught:
        SftpClient(wrong).connect()
    assert str(caught.value) == f"authentication failed for user {USERNAME} at {endpoint.address}"
    assert "not-the-password-123" not in repr(caught.value)


def test_a_key_the_server_does_not_know_is_an_auth_error(endpoint: SftpEndpoint) -> None:
    stranger = generate_user_key_pair()
    with pytest.raises(SftpAuthError, match=f"user {USERNAME}"):
        SftpClient(with_fields(endpoint, password=None, private_key=stranger.private_key)).connect()


def test_an_unreadable_private_key_is_an_auth_error_without_the_key(endpoint: SftpEndpoint) -> None:
    garbage = "-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END OPENSSH PRIVATE KEY-----\n"
    with pytest.raises(SftpAuthError) as caught:
        SftpClient(with_fields(endpoint, password=None, private_key=garbage)).connect()
    assert "c2VjcmV0LWtleS1tYXRlcmlhbA" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


# --- Host keys --------------------------------------------------------------------------------------


@pytest.mark.parametrize("known_hosts_state", ["empty file", "no file", "not configured"])
def test_an_unknown_host_key_is_rejected_with_its_fingerprint_and_the_fix(
    endpoint: SftpEndpoint, sftp_server: SftpServerInfo, tmp_path: Path, known_hosts_state: str
) -> None:
    path: Path | None = tmp_path / "empty_known_hosts"
    if known_hosts_state == "empty file":
        path.write_text("")
    elif known_hosts_state == "not configured":
        path = None
    with pytest.raises(HostKeyRejected) as caught:
        SftpClient(with_fields(endpoint, known_hosts=path)).connect()
    message = str(caught.value)
    assert sftp_server.host_key_fingerprint in message
    assert endpoint.address in message
    assert "if you trust this key, run `bankflow sftp trust acme-drop`" in message
    assert "CHANGED" not in message


def test_pinned_by_a_hashed_known_hosts_entry(
    endpoint: SftpEndpoint, sftp_server: SftpServerInfo, tmp_path: Path
) -> None:
    name, key_type, key_base64 = sftp_server.known_hosts_line.split()
    hashed = tmp_path / "hashed_known_hosts"
    hashed.write_text(
        f"other.example.com {key_type} {generate_host_key().export_public_key('openssh').decode().split()[1]}\n"
        f"{paramiko.HostKeys.hash_host(name)} {key_type} {key_base64}\n"
    )
    with SftpClient(with_fields(endpoint, known_hosts=hashed)) as sftp:
        assert sftp.list_files("/") == []


def test_pinned_by_fingerprint_alone(endpoint: SftpEndpoint, sftp_server: SftpServerInfo) -> None:
    pinned = with_fields(endpoint, known_hosts=None, host_key_fingerprint=sftp_server.host_key_fingerprint)
    with SftpClient(pinned) as sftp:
        assert sftp.list_files("/") == []


def test_a_fingerprint_that_does_not_match_is_a_changed_key(
    endpoint: SftpEndpoint, sftp_server: SftpServerInfo
) -> None:
    other = generate_host_key().get_fingerprint("sha256")
    with pytest.raises(HostKeyRejected, match="HOST KEY CHANGED") as caught:
        SftpClient(with_fields(endpoint, known_hosts=None, host_key_fingerprint=other)).connect()
    assert sftp_server.host_key_fingerprint in str(caught.value)


def test_a_server_restarted_with_another_host_key_is_rejected_as_changed(
    drop_root: Path, tmp_path: Path
) -> None:
    users = {USERNAME: SftpUser(password=PASSWORD)}
    known_hosts = tmp_path / "known_hosts"
    with serve_sftp(drop_root, users=users) as before:
        known_hosts.write_text(before.known_hosts_line + "\n")
        endpoint = SftpEndpoint(
            host=before.host, port=before.port, username=USERNAME, password=PASSWORD, known_hosts=known_hosts
        )
        with SftpClient(endpoint) as sftp:
            sftp.list_files("/")
    with serve_sftp(drop_root, users=users, port=before.port) as after:  # same host:port, new key
        with pytest.raises(HostKeyRejected) as caught:
            SftpClient(endpoint).connect()
    message = str(caught.value)
    assert after.host_key_fingerprint != before.host_key_fingerprint
    assert "HOST KEY CHANGED" in message
    assert after.host_key_fingerprint in message and before.host_key_fingerprint in message
    assert "bankflow sftp trust <connection>" in message


def test_a_rotated_host_key_is_rejected_as_changed(
    endpoint: SftpEndpoint, sftp_server: SftpServerInfo, faults: SftpFaults
) -> None:
    with SftpClient(endpoint) as sftp:
        sftp.list_files("/")
    new_fingerprint = faults.rotate_host_key()
    with pytest.raises(HostKeyRejected, match="HOST KEY CHANGED") as caught:
        SftpClient(endpoint).connect()
    assert new_fingerprint in str(caught.value)


def test_scan_and_trust_then_connect(
    endpoint: SftpEndpoint, sftp_server: SftpServerInfo, tmp_path: Path
) -> None:
    known_hosts = tmp_path / "fresh" / "known_hosts"
    presented = scan_host_key(sftp_server.host, sftp_server.port, timeout=10)
    assert presented.fingerprint == sftp_server.host_key_fingerprint
    assert presented.key_type == "ssh-ed25519"
    assert presented.known_hosts_line == sftp_server.known_hosts_line

    trust_host_key(known_hosts, presented)

    assert stat.S_IMODE(known_hosts.stat().st_mode) == 0o600
    with SftpClient(with_fields(endpoint, known_hosts=known_hosts)) as sftp:
        assert sftp.list_files("/") == []


def test_trust_after_a_rotation_replaces_the_old_entry_and_keeps_other_hosts(
    endpoint: SftpEndpoint, sftp_server: SftpServerInfo, faults: SftpFaults
) -> None:
    assert endpoint.known_hosts is not None
    name, key_type, old_base64 = sftp_server.known_hosts_line.split()
    other_host = f"bank.example.com {key_type} {old_base64}"
    endpoint.known_hosts.write_text(
        f"# kept comment\n{other_host}\n{paramiko.HostKeys.hash_host(name)} {key_type} {old_base64}\n"
        f"{sftp_server.known_hosts_line}\n"
    )
    faults.rotate_host_key()
    with pytest.raises(HostKeyRejected):
        SftpClient(endpoint).connect()

    trust_host_key(endpoint.known_hosts, scan_host_key(sftp_server.host, sftp_server.port, timeout=10))

    lines = endpoint.known_hosts.read_text().splitlines()
    assert lines[:2] == ["# kept comment", other_host]
    assert len(lines) == 3 and old_base64 not in lines[2]
    with SftpClient(endpoint) as sftp:
        assert sftp.list_files("/") == []


# --- Dropped connections ----------------------------------------------------------------------------


def test_a_download_cut_mid_file_restarts_and_returns_the_whole_file(
    drop_root: Path,
    endpoint: SftpEndpoint,
    faults: SftpFaults,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    data = os.urandom(BIG_FILE_SIZE)
    drop_file(drop_root / "outgoing", "big.bin", data)
    landing = tmp_path / "landing"
    with fast_retries(endpoint) as sftp:
        (remote,) = sftp.list_files("/outgoing")
        faults.cut_reads(after_bytes=3 * 1024 * 1024, count=1)
        with caplog.at_level(logging.WARNING, logger="resources.files.sftp"):
            downloaded = sftp.download(remote, landing)

    assert faults.cuts_made == 1
    assert downloaded.sha256 == sha256_of(data) and downloaded.path.read_bytes() == data
    assert leftovers(landing) == ["big.bin"]
    assert any("reconnecting" in record.getMessage() for record in caplog.records)
    assert not any(PASSWORD in record.getMessage() for record in caplog.records)


def test_a_download_cut_on_every_attempt_fails_clearly_and_leaves_nothing(
    drop_root: Path, endpoint: SftpEndpoint, faults: SftpFaults, tmp_path: Path
) -> None:
    drop_file(drop_root / "outgoing", "big.bin", os.urandom(BIG_FILE_SIZE))
    landing = tmp_path / "landing"
    with fast_retries(endpoint, attempts=3) as sftp:
        (remote,) = sftp.list_files("/outgoing")
        faults.cut_reads(after_bytes=1024 * 1024, count=1000)
        with pytest.raises(SftpError) as caught:
            sftp.download(remote, landing)

    assert faults.cuts_made == 3
    message = str(caught.value)
    assert f"download of /outgoing/big.bin from {endpoint.address} failed after 3 attempts" in message
    assert PASSWORD not in message and PASSWORD not in repr(caught.value.__cause__)
    assert leftovers(landing) == []


# --- Secrets and policy -----------------------------------------------------------------------------


def test_no_secret_in_reprs(endpoint: SftpEndpoint, user_keys: UserKeyPair) -> None:
    with_key = with_fields(endpoint, private_key=user_keys.private_key)
    text = repr(with_key) + repr(SftpUser(password=PASSWORD)) + repr(user_keys)
    assert PASSWORD not in text
    assert user_keys.private_key not in text
    assert "PRIVATE KEY" not in text
    assert user_keys.public_key in repr(user_keys)  # the public half is fine to show


def test_the_client_never_auto_accepts_host_keys() -> None:
    source = (REPO_ROOT / "resources" / "files" / "sftp.py").read_text()
    assert "RejectPolicy" in source
    for forbidden in ("AutoAddPolicy", "WarningPolicy"):
        assert forbidden not in source
