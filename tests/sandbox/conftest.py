"""Fixtures for the sandbox tests: one world and one served sandbox per session, real HTTP via httpx.

No ``__init__.py`` here on purpose: under pytest's default "prepend" import mode a package named
``tests/sandbox`` (with no ``tests/__init__.py``) would be imported as ``sandbox`` and shadow the real
package. Test modules are therefore named ``test_sandbox_*.py`` to stay unique across ``tests/``.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sandbox_oauth_flow import SEED, TODAY, connect

from sandbox.server import Sandbox
from sandbox.world import World


@pytest.fixture(scope="session")
def world() -> World:
    """A world of its own (not the served one), for pure World tests."""
    return World(SEED, TODAY)


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(seed=SEED, today=TODAY) as running:
        yield running


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[httpx.Client]:
    """An HTTP client on the TrueLayer app; resets faults after each test so no test leaks state."""
    with httpx.Client(base_url=sandbox.truelayer_url, timeout=10) as http:
        yield http
    sandbox.state.clear_fault()


@pytest.fixture
def auth(client: httpx.Client, sandbox: Sandbox) -> dict[str, str]:
    """Authorization headers with a fresh access token."""
    return {"Authorization": f"Bearer {connect(client, sandbox)['access_token']}"}
