"""Serving the sandbox apps on 127.0.0.1: one uvicorn server per provider, each in a background thread."""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp

from sandbox.berlin_group import build_berlin_group_app
from sandbox.fibank import build_fibank_app
from sandbox.gocardless import build_gocardless_app
from sandbox.razorpay import build_razorpay_app
from sandbox.rest_banks import build_hdfc_app, build_icici_app, build_sbi_app
from sandbox.revolut import build_revolut_app
from sandbox.state import SandboxState
from sandbox.truelayer import API_PREFIX, build_truelayer_app
from sandbox.world import World

AppFactory = Callable[..., ASGIApp]  # (world, state[, provider options]) -> app

# provider name -> app factory; a new provider adds one line here.
PROVIDER_APPS: dict[str, AppFactory] = {
    "truelayer": build_truelayer_app,
    "berlin_group": build_berlin_group_app,
    "revolut": build_revolut_app,
    "gocardless": build_gocardless_app,
    "razorpay": build_razorpay_app,
    # Bank REST APIs of the reconciliation seed's three styles (sandbox.rest_banks).
    "hdfc": build_hdfc_app,
    "icici": build_icici_app,
    "sbi": build_sbi_app,
    # Fibank's retail e-banking, scripted like its web app (sandbox.fibank).
    "fibank": build_fibank_app,
}

_STARTUP_TIMEOUT = 10.0


@contextlib.contextmanager
def serve(app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run ``app`` with uvicorn in a background thread; yield its base URL (port 0 = a free port).

    Returns only once the server accepts connections; on exit asks uvicorn to stop and joins the thread.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"sandbox:{port}", daemon=True
    )
    thread.start()
    try:
        _wait_until_serving(server, thread, host, port)
        url_host = f"[{host}]" if family == socket.AF_INET6 else host
        yield f"http://{url_host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=_STARTUP_TIMEOUT)
        sock.close()
        if thread.is_alive():  # pragma: no cover - uvicorn ignored should_exit
            raise RuntimeError(f"sandbox server on port {port} did not stop")


def _wait_until_serving(server: uvicorn.Server, thread: threading.Thread, host: str, port: int) -> None:
    deadline = time.monotonic() + _STARTUP_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"sandbox server on {host}:{port} did not start")
        time.sleep(0.01)
    connect_host = "127.0.0.1" if host == "0.0.0.0" else host
    with socket.create_connection((connect_host, port), timeout=_STARTUP_TIMEOUT):
        pass


class Sandbox:
    """The whole simulated bank world, served: one World, and per provider a SandboxState and a server.

    ``with Sandbox(seed=7, today=date(2025, 6, 15)) as sandbox:`` then point clients at
    ``sandbox.truelayer_url`` (auth) and ``sandbox.truelayer_api_url`` (data), with
    ``sandbox.client_id`` / ``sandbox.client_secret``. ``ports`` fixes a provider's port (default: free).
    """

    def __init__(
        self,
        seed: int = 42,
        today: dt.date | None = None,
        *,
        host: str = "127.0.0.1",
        ports: Mapping[str, int] | None = None,
        client_id: str = "sandbox-bankflow",
        client_secret: str = "sandbox-secret",
        provider_options: Mapping[str, object] | None = None,
    ) -> None:
        """``provider_options`` hands a provider's app its own switches (e.g. the Berlin Group
        bank's frequencyPerDay), passed to its factory as the third argument."""
        self.world = World(seed, today)
        options = dict(provider_options or {})
        self.host = host
        self.ports = dict(ports or {})
        self.states: dict[str, SandboxState] = {
            name: SandboxState(client_id=client_id, client_secret=client_secret) for name in PROVIDER_APPS
        }
        self.apps: dict[str, ASGIApp] = {
            name: factory(self.world, self.states[name], *([options[name]] if name in options else []))
            for name, factory in PROVIDER_APPS.items()
        }
        self.urls: dict[str, str] = {}
        self._stack = contextlib.ExitStack()

    def start(self) -> Sandbox:
        try:
            for name, app in self.apps.items():
                self.urls[name] = self._stack.enter_context(serve(app, self.host, self.ports.get(name, 0)))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self._stack.close()
        self.urls.clear()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def state(self) -> SandboxState:
        """The TrueLayer provider's state (faults, tokens, request counts)."""
        return self.states["truelayer"]

    @property
    def truelayer_url(self) -> str:
        """Base URL of the TrueLayer app: the auth server (``/``, ``/connect/token``) lives here."""
        return self.urls["truelayer"]

    @property
    def truelayer_api_url(self) -> str:
        return self.truelayer_url + API_PREFIX

    @property
    def client_id(self) -> str:
        return self.state.client_id

    @property
    def client_secret(self) -> str:
        return self.state.client_secret


def run_forever(seed: int = 42, port: int = 0, host: str = "127.0.0.1", today: dt.date | None = None) -> None:
    """Serve the sandbox until Ctrl-C, printing URLs and client credentials.

    ``port`` is the first provider's port (0 = free); later providers take the following ports.
    """
    ports = {name: port + index for index, name in enumerate(PROVIDER_APPS)} if port else {}
    with Sandbox(seed, today, host=host, ports=ports) as sandbox:
        world = sandbox.world
        print(f"bankflow sandbox: seed={world.seed} today={world.today} ({len(world.accounts)} accounts)")
        for name, url in sandbox.urls.items():
            print(f"  {name:<13} {url}  (faults: POST {url}/_sandbox/faults)")
        print(f"  client_id     {sandbox.client_id}")
        print(f"  client_secret {sandbox.client_secret}")
        print("  revolut: upload your public key PEM with POST <revolut url>/_sandbox/revolut/certificate")
        print("Press Ctrl-C to stop.", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopping")
