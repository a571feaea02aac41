"""Serving: free ports, readiness, clean shutdown, the Sandbox wrapper and the ``python -m sandbox`` entry."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from sandbox.server import Sandbox, serve

REPO = Path(__file__).resolve().parents[2]


def hello_app() -> Starlette:
    async def hello(request: object) -> PlainTextResponse:
        return PlainTextResponse("hello")

    return Starlette(routes=[Route("/", hello)])


def test_serve_starts_and_stops_cleanly() -> None:
    threads_before = set(threading.enumerate())
    with serve(hello_app()) as url:
        assert url.startswith("http://127.0.0.1:")
        with httpx.Client() as http:  # keep-alive connection left open on purpose
            assert http.get(url).text == "hello"
            with serve(hello_app()) as second:
                assert second != url and httpx.get(second).text == "hello"
    assert set(threading.enumerate()) <= threads_before
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=2)


def test_sandbox_exposes_world_state_and_urls() -> None:
    with Sandbox(seed=3) as sandbox:
        assert set(sandbox.urls) == {
            *("truelayer", "berlin_group", "revolut", "gocardless", "razorpay", "fibank"),
            *("hdfc", "icici", "sbi"),
        }
        assert sandbox.truelayer_api_url == sandbox.truelayer_url + "/data/v1"
        assert (sandbox.client_id, sandbox.client_secret) == ("sandbox-bankflow", "sandbox-secret")
        assert sandbox.state is sandbox.states["truelayer"] and sandbox.world.seed == 3
        assert httpx.get(sandbox.truelayer_api_url + "/accounts").status_code == 401
    assert sandbox.urls == {}


def test_run_forever_prints_credentials_and_stops_on_ctrl_c() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--seed", "5", "--today", "2025-01-31"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        lines = []
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        output = "".join(lines)
        assert "seed=5 today=2025-01-31" in output and "sandbox-secret" in output
        # "  truelayer     http://127.0.0.1:PORT  (faults: ...)": the base URL serves /data/v1.
        base_url = next(line.split()[1] for line in lines if line.strip().startswith("truelayer"))
        assert httpx.get(base_url + "/data/v1/accounts").status_code == 401
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
