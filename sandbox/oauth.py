"""In-memory OAuth2 authorisation-code store: single-use codes, expiring access tokens, rotating refresh tokens."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Grant:
    """What a user consented to; carried from the code to every token minted from it."""

    scope: str
    providers: frozenset[str]  # provider ids the consent is limited to; empty = every provider
    credentials_id: str
    consented_at: float


@dataclass
class _Code:
    grant: Grant
    redirect_uri: str
    expires_at: float
    code_challenge: str | None = None  # PKCE S256 challenge, when the client sent one


def s256_challenge(code_verifier: str) -> str:
    """RFC 7636 S256: base64url(sha256(verifier)) without padding."""
    digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass
class OAuthStore:
    """Thread-safe token bookkeeping. ``clock`` is injectable so tests can move time forward."""

    access_token_ttl: int = 3600
    code_ttl: int = 300
    clock: Callable[[], float] = time.time
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _codes: dict[str, _Code] = field(default_factory=dict, repr=False)
    _access: dict[str, tuple[Grant, float]] = field(default_factory=dict, repr=False)
    _refresh: dict[str, Grant] = field(default_factory=dict, repr=False)

    def issue_code(
        self,
        redirect_uri: str,
        scope: str,
        providers: frozenset[str] = frozenset(),
        code_challenge: str | None = None,
    ) -> str:
        """A new single-use authorisation code, valid for ``code_ttl`` seconds."""
        now = self.clock()
        grant = Grant(scope, providers, str(uuid.uuid4()), now)
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Code(grant, redirect_uri, now + self.code_ttl, code_challenge)
        return code

    def redeem_code(self, code: str, redirect_uri: str, code_verifier: str | None = None) -> Grant | None:
        """The grant behind a code, or None when unknown, used, expired, sent with another redirect_uri,
        or (for a PKCE code) without the verifier of its challenge.
        A code is burnt by any redemption attempt, as real servers do."""
        with self._lock:
            entry = self._codes.pop(code, None)
        if entry is None or entry.expires_at < self.clock() or entry.redirect_uri != redirect_uri:
            return None
        if entry.code_challenge is not None and (
            code_verifier is None or s256_challenge(code_verifier) != entry.code_challenge
        ):
            return None
        return entry.grant

    def issue_tokens(self, grant: Grant) -> tuple[str, str | None]:
        """(access token, refresh token); a refresh token only when the scope includes offline_access."""
        access = secrets.token_urlsafe(32)
        refresh = secrets.token_urlsafe(32) if "offline_access" in grant.scope.split() else None
        with self._lock:
            self._access[access] = (grant, self.clock() + self.access_token_ttl)
            if refresh:
                self._refresh[refresh] = grant
        return access, refresh

    def use_refresh_token(self, refresh_token: str) -> Grant | None:
        """Consume a refresh token (rotation: it is invalid afterwards); None when unknown or already used."""
        with self._lock:
            return self._refresh.pop(refresh_token, None)

    def grant_for(self, access_token: str) -> Grant | None:
        """The grant of a live access token; None when unknown or expired."""
        with self._lock:
            entry = self._access.get(access_token)
        if entry is None or entry[1] <= self.clock():
            return None
        return entry[0]

    def expire_access_tokens(self) -> None:
        """Make every issued access token expired now (for tests of the refresh path)."""
        with self._lock:
            self._access = {token: (grant, 0.0) for token, (grant, _) in self._access.items()}

    def revoke_refresh_tokens(self) -> None:
        """Forget every refresh token, as a lapsed consent would (refresh then gives invalid_grant)."""
        with self._lock:
            self._refresh.clear()
