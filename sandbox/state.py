"""Mutable state of one sandbox provider: client credentials, tokens, fault switches, request counts."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, get_args

from sandbox.oauth import OAuthStore

FaultMode = Literal["malformed_json", "server_error", "unauthorized", "rate_limit", "slow"]
FAULT_MODES: tuple[str, ...] = get_args(FaultMode)
# Bad rows a provider app can add to its answers (sandbox/bad_rows.py), for the data-quality checks.
BadRowKind = Literal["null_amount", "future_date", "duplicate_id", "unknown_currency"]
BAD_ROW_KINDS: tuple[str, ...] = get_args(BadRowKind)


@dataclass(frozen=True)
class Fault:
    """An injected failure: ``remaining`` requests under ``path_prefix`` get it (None = until cleared)."""

    mode: FaultMode
    remaining: int | None
    path_prefix: str


@dataclass
class SandboxState:
    """Shared between the test (or CLI) thread and the server thread; every mutation takes the lock."""

    client_id: str = "sandbox-bankflow"
    client_secret: str = "sandbox-secret"
    oauth: OAuthStore = field(default_factory=OAuthStore)
    slow_seconds: float = 2.0  # how late the "slow" fault answers
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _fault: Fault | None = field(default=None, repr=False)
    _bad_rows: frozenset[str] = field(default=frozenset(), repr=False)
    _counts: Counter[str] = field(default_factory=Counter, repr=False)

    # -- faults ---------------------------------------------------------------------------------------

    def set_fault(self, mode: str, count: int | None = None, path_prefix: str = "/data/v1") -> Fault:
        """Make the next ``count`` requests under ``path_prefix`` fail with ``mode`` (None = until cleared)."""
        if mode not in FAULT_MODES:
            raise ValueError(f"unknown fault mode {mode!r}; expected one of {', '.join(FAULT_MODES)}")
        if count is not None and count < 1:
            raise ValueError("count must be a positive integer or None")
        fault = Fault(mode, count, path_prefix)  # type: ignore[arg-type]
        with self._lock:
            self._fault = fault
        return fault

    def clear_fault(self) -> None:
        """Clear every switch: the fault and the bad rows."""
        with self._lock:
            self._fault = None
            self._bad_rows = frozenset()

    def set_bad_rows(self, kinds: Iterable[str]) -> frozenset[str]:
        """Add one bad row of each kind to every answer that supports it, until cleared."""
        chosen = frozenset(kinds)
        unknown = sorted(chosen - set(BAD_ROW_KINDS))
        if unknown:
            raise ValueError(
                f"unknown bad row kind {', '.join(unknown)}; expected some of {', '.join(BAD_ROW_KINDS)}"
            )
        with self._lock:
            self._bad_rows = chosen
        return chosen

    @property
    def bad_rows(self) -> frozenset[str]:
        with self._lock:
            return self._bad_rows

    @property
    def fault(self) -> Fault | None:
        with self._lock:
            return self._fault

    def take_fault(self, path: str) -> FaultMode | None:
        """The fault mode to apply to a request for ``path``, consuming one use of a counted fault."""
        with self._lock:
            fault = self._fault
            if fault is None or not path.startswith(fault.path_prefix):
                return None
            if fault.remaining is not None:
                remaining = fault.remaining - 1
                self._fault = Fault(fault.mode, remaining, fault.path_prefix) if remaining else None
            return fault.mode

    # -- request counts -------------------------------------------------------------------------------

    def record_request(self, path: str) -> None:
        with self._lock:
            self._counts[path] += 1

    def request_count(self, path: str) -> int:
        """How many requests ``path`` received (exact path, e.g. "/data/v1/accounts")."""
        with self._lock:
            return self._counts[path]

    @property
    def request_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def reset_request_counts(self) -> None:
        with self._lock:
            self._counts.clear()
