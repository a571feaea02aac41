"""Benchmark: bankflow's SFTP client download vs OpenSSH's ``sftp`` on the same file and server.

    python -m bench.sftp [--size-mb 200] [--rounds 3] [--same-cipher] [--json]

One file of random bytes (default 200 MB, generated in a temporary directory) is served by the sandbox
SSH server (sandbox/sftp_server.py, asyncssh) from a process of its own, so that the server's Python
never shares a GIL with the client being timed. In the same run, alternating, each round fetches it
with ``resources.files.sftp.SftpClient`` (connect, list, download with sha256) and with
``/usr/bin/sftp -b`` (key auth with a generated key file, the host key pinned in a known_hosts file,
``StrictHostKeyChecking=yes``). Wall time includes connecting and authenticating for both. Each client
uses its own default cipher (paramiko: aes128-ctr + hmac-sha2-256; OpenSSH: chacha20-poly1305) unless
``--same-cipher`` makes OpenSSH use paramiko's. Every copy's
sha256 is checked against the source's. Ratio = client / openssh on the medians; the target is <= 1.5.

Both clients download from the same Python server, which can be the bottleneck for both: the output
also reports the server process's CPU seconds per fetch (from /proc) to show it.

This is a benchmark, not a test: it reports times and never asserts on them; it exits non-zero only
when a copy's sha256 differs or a fetch fails.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path

from resources.files.sftp import SftpClient, SftpEndpoint

OPENSSH_SFTP = "/usr/bin/sftp"
USERNAME = "bench"
REMOTE_DIR = "/outgoing"
FILE_NAME = "statement-dump.bin"


def _serve(root: str, public_key: str, conn: Connection) -> None:
    """Child process: serve ``root`` until the parent says stop; send (port, known_hosts_line, pid)."""
    from sandbox.sftp_server import SftpUser, serve_sftp

    with serve_sftp(Path(root), users={USERNAME: SftpUser(authorized_public_key=public_key)}) as info:
        conn.send((info.port, info.known_hosts_line, os.getpid()))
        conn.recv()  # block until stop


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _write_random_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as out:
        remaining = size
        while remaining:
            block = os.urandom(min(remaining, 8 * 1024 * 1024))
            digest.update(block)
            out.write(block)
            remaining -= len(block)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(8 * 1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def _fetch_with_client(endpoint: SftpEndpoint, dest: Path) -> str:
    with SftpClient(endpoint) as sftp:
        (remote,) = sftp.list_files(REMOTE_DIR, FILE_NAME)
        return sftp.download(remote, dest).sha256


def _fetch_with_openssh(
    port: int, key_file: Path, known_hosts: Path, dest: Path, extra_options: Sequence[str]
) -> str:
    batch = dest.parent / "openssh.batch"
    batch.write_text(f"get {REMOTE_DIR}/{FILE_NAME} {dest / FILE_NAME}\n")
    subprocess.run(
        [
            OPENSSH_SFTP,
            *extra_options,
            "-q",
            "-F",
            "/dev/null",
            "-b",
            str(batch),
            "-P",
            str(port),
            "-i",
            str(key_file),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            f"UserKnownHostsFile={known_hosts}",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=yes",
            f"{USERNAME}@127.0.0.1",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return _sha256(dest / FILE_NAME)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sftp", description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200, help="size of the file, in MB (10^6 bytes)")
    parser.add_argument("--rounds", type=int, default=3, help="fetches per client, alternating")
    parser.add_argument(
        "--same-cipher",
        action="store_true",
        help="make OpenSSH use paramiko's cipher and MAC (aes128-ctr, hmac-sha2-256) instead of its "
        "default chacha20-poly1305, so that the server's cost per byte is the same for both",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if not Path(OPENSSH_SFTP).exists():
        print(f"{OPENSSH_SFTP} not found: the reference client is needed", file=sys.stderr)
        return 2

    from sandbox.sftp_server import generate_user_key_pair

    size = args.size_mb * 1_000_000
    openssh_options = ["-c", "aes128-ctr", "-o", "MACs=hmac-sha2-256"] if args.same_cipher else []
    with tempfile.TemporaryDirectory(prefix="bench-sftp-") as tmp:
        work = Path(tmp)
        root = work / "root"
        (root / REMOTE_DIR.strip("/")).mkdir(parents=True)
        expected = _write_random_file(root / REMOTE_DIR.strip("/") / FILE_NAME, size)
        keys = generate_user_key_pair()
        key_file = work / "id_ed25519"
        key_file.write_text(keys.private_key)
        key_file.chmod(0o600)

        context = multiprocessing.get_context("spawn")
        parent_conn, child_conn = context.Pipe()
        server = context.Process(target=_serve, args=(str(root), keys.public_key, child_conn), daemon=True)
        server.start()
        try:
            if not parent_conn.poll(60):
                print("the SFTP server process did not start", file=sys.stderr)
                return 2
            port, known_hosts_line, server_pid = parent_conn.recv()
            known_hosts = work / "known_hosts"
            known_hosts.write_text(known_hosts_line + "\n")
            endpoint = SftpEndpoint(
                host="127.0.0.1",
                port=port,
                username=USERNAME,
                private_key=keys.private_key,
                known_hosts=known_hosts,
                timeout=60.0,
            )
            runs: dict[str, list[float]] = {"client": [], "openssh": []}
            server_cpu: dict[str, list[float]] = {"client": [], "openssh": []}
            bad: list[str] = []
            for round_number in range(args.rounds):
                for name in ("client", "openssh"):
                    dest = work / f"{name}-{round_number}"
                    dest.mkdir()
                    cpu_before = _cpu_seconds(server_pid)
                    started = time.perf_counter()
                    if name == "client":
                        digest = _fetch_with_client(endpoint, dest)
                    else:
                        digest = _fetch_with_openssh(port, key_file, known_hosts, dest, openssh_options)
                    runs[name].append(time.perf_counter() - started)
                    server_cpu[name].append(_cpu_seconds(server_pid) - cpu_before)
                    if digest != expected or _sha256(dest / FILE_NAME) != expected:
                        bad.append(f"{name} round {round_number + 1}")
                    shutil.rmtree(dest)
        finally:
            parent_conn.send("stop")
            server.join(timeout=30)

    medians = {name: statistics.median(times) for name, times in runs.items()}
    result = {
        "size_bytes": size,
        "rounds": args.rounds,
        "wall_s": runs,
        "median_s": medians,
        "mb_per_s": {name: size / 1e6 / median for name, median in medians.items()},
        "server_cpu_s": server_cpu,
        "ratio_client_over_openssh": medians["client"] / medians["openssh"],
        "sha256_ok": not bad,
        "openssh_same_cipher": args.same_cipher,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        openssh_cipher = (
            "aes128-ctr + hmac-sha2-256" if args.same_cipher else "its default (chacha20-poly1305)"
        )
        print(f"file: {size / 1e6:.0f} MB random, server: sandbox asyncssh in its own process")
        print(f"ciphers: client aes128-ctr + hmac-sha2-256 (paramiko's choice), openssh {openssh_cipher}")
        for name in ("client", "openssh"):
            walls = ", ".join(f"{seconds:.2f}" for seconds in runs[name])
            cpu = ", ".join(f"{seconds:.2f}" for seconds in server_cpu[name])
            print(
                f"  {name:<8} wall s: {walls}  median {medians[name]:.2f} s = "
                f"{result['mb_per_s'][name]:.1f} MB/s   server CPU s: {cpu}"
            )
        print(f"  ratio client/openssh (medians): {result['ratio_client_over_openssh']:.2f}")
        print(f"  sha256 of every copy: {'ok' if not bad else 'MISMATCH in ' + ', '.join(bad)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
