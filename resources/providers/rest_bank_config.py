"""Declarative REST banks: one YAML file per bank, validated here.

A bank whose API is "authenticate, list accounts, list an account's transactions for a date window"
(the HDFC/ICICI/SBI-style APIs of the reconciliation seed) needs no Python: its YAML file names the
base URL, the auth kind, both endpoints, the query parameters of the window, where the records are
in a response, how pages follow each other, and which bank field becomes which field of the seed's
standard transaction format (shared/reference/bank-contracts.md §11).

Secrets never live in the file: it names the environment variables that hold them (`token_env:
BANKFLOW_HDFC_TOKEN`), and every model forbids unknown keys, so a pasted `token: ...` is an error.

Files are read from `connectors/rest/` at the repository root and from every directory listed in
`BANKFLOW_REST_CONNECTORS_DIR` (os.pathsep-separated). A bad file fails with its path and the field.
"""

from __future__ import annotations

import os
import string
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from resources.yaml_config import load_yaml_model

DEFAULT_CONNECTORS_DIR = Path(__file__).resolve().parents[2] / "connectors" / "rest"
CONNECTORS_DIR_ENV = "BANKFLOW_REST_CONNECTORS_DIR"

# Names the other connectors already use as their `source`: a YAML bank may not take one.
RESERVED_NAMES = frozenset(
    {"truelayer", "berlin_group", "revolut", "gocardless", "razorpay", "fibank", "rest"}
)

# The seed's standard transaction format (contract §11); `source` is always the bank's name.
TRANSACTION_FIELDS = (
    "txn_id",
    "amount",
    "currency",
    "status",
    "timestamp",
    "account_id",
    "bank_code",
    "channel",
    "transaction_type",
    "reference_number",
    "merchant_id",
    "description",
)
REQUIRED_TRANSACTION_FIELDS = ("txn_id", "amount", "currency", "status", "timestamp", "account_id")
STATUSES = ("SUCCESS", "PENDING", "FAILED", "REVERSED")
ACCOUNT_FIELDS = (
    "account_id",
    "currency",
    "account_number",
    "branch_code",
    "account_type",
    "display_name",
    "balance",
    "available_balance",
)
REQUIRED_ACCOUNT_FIELDS = ("account_id", "currency")
# Placeholders a transactions path or query parameter may use; dates are datetime.date, so a
# template formats them itself: "{first_day:%d-%m-%Y}". end_day is last_day + 1 (exclusive ends).
WINDOW_PLACEHOLDERS = frozenset({"account_id", "first_day", "last_day", "end_day"})

EnvName = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$")]
FieldPath = Annotated[str, Field(pattern=r"^[^.\s]+(\.[^.\s]+)*$")]


class RestConnectorConfigError(ValueError):
    """A connector file that cannot be used; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- auth ------------------------------------------------------------------------------------------


class BearerAuth(_Strict):
    """A static bearer token (HDFC style)."""

    kind: Literal["bearer"]
    token_env: EnvName


class ApiKeyAuth(_Strict):
    """An API key in a header, nothing else."""

    kind: Literal["api_key"]
    api_key_header: str
    api_key_env: EnvName


class ApiKeyBearerAuth(_Strict):
    """An API key header plus a bearer token (ICICI style)."""

    kind: Literal["api_key_bearer"]
    api_key_header: str
    api_key_env: EnvName
    token_env: EnvName


class OAuth2ClientCredentialsAuth(_Strict):
    """OAuth2 client credentials (RFC 6749 §4.4, SBI style): a short-lived token from `token_url`."""

    kind: Literal["oauth2_client_credentials"]
    token_url: str  # absolute, or a path under base_url
    client_id_env: EnvName
    client_secret_env: EnvName
    scope: str | None = None
    # basic: HTTP Basic client authentication (the RFC's default); body: client_id/client_secret in the form.
    client_auth: Literal["basic", "body"] = "basic"


Auth = Annotated[
    BearerAuth | ApiKeyAuth | ApiKeyBearerAuth | OAuth2ClientCredentialsAuth, Field(discriminator="kind")
]


# -- pagination ------------------------------------------------------------------------------------


class NoPagination(_Strict):
    kind: Literal["none"] = "none"


class PagePagination(_Strict):
    """page=1,2,... with a page size; ends on a short page, or at `total_pages` when the body says."""

    kind: Literal["page"]
    page_param: str
    size_param: str
    page_size: int = Field(ge=1, le=10_000)
    first_page: int = Field(default=1, ge=0)
    total_pages: FieldPath | None = None


class OffsetPagination(_Strict):
    """offset=0,n,2n,... with a limit; ends on a short page, or at `total` when the body says."""

    kind: Literal["offset"]
    offset_param: str
    limit_param: str
    page_size: int = Field(ge=1, le=10_000)
    total: FieldPath | None = None


class CursorPagination(_Strict):
    """The body names the next page's cursor; the next request sends it in `cursor_param`."""

    kind: Literal["cursor"]
    cursor_param: str
    next_cursor: FieldPath
    size_param: str | None = None
    page_size: int | None = Field(default=None, ge=1, le=10_000)


class NextLinkPagination(_Strict):
    """The body holds the next page's URL (absolute or relative); ends when it is absent."""

    kind: Literal["next_link"]
    next_link: FieldPath
    size_param: str | None = None
    page_size: int | None = Field(default=None, ge=1, le=10_000)


Pagination = Annotated[
    NoPagination | PagePagination | OffsetPagination | CursorPagination | NextLinkPagination,
    Field(discriminator="kind"),
]


# -- field maps ------------------------------------------------------------------------------------


class SignFlag(_Strict):
    """An unsigned amount whose direction is another field (CR/DR): debit values make it negative."""

    path: FieldPath
    debit: list[str] = Field(min_length=1)
    credit: list[str] = Field(min_length=1)


class FieldSpec(_Strict):
    """Where one standard field comes from: a path in the bank's record, or a constant.

    `values` translates the bank's codes (status "S" -> "SUCCESS"); `sign` applies to `amount`;
    `format` (strptime) to `timestamp` when the bank does not send ISO 8601.
    """

    path: FieldPath | None = None
    value: str | None = None
    values: dict[str, str] | None = None
    sign: SignFlag | None = None
    format: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        # `amount: txnAmount` is the common case: a bare string is a path.
        return {"path": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _one_source(self) -> FieldSpec:
        if (self.path is None) == (self.value is None):
            raise ValueError("give exactly one of `path` (a field of the record) or `value` (a constant)")
        return self


def _check_field_map(
    fields: Mapping[str, FieldSpec], allowed: Sequence[str], required: Sequence[str]
) -> None:
    unknown = sorted(set(fields) - set(allowed))
    if "source" in unknown:
        raise ValueError("`source` is not mapped: it is always the connector's `name`")
    if unknown:
        raise ValueError(
            f"unknown standard field(s) {', '.join(unknown)}; expected some of {', '.join(allowed)}"
        )
    missing = [name for name in required if name not in fields]
    if missing:
        raise ValueError(f"required standard field(s) not mapped: {', '.join(missing)}")
    for name, spec in fields.items():
        if spec.sign is not None and name != "amount":
            raise ValueError(f"{name}: `sign` applies to amount only")
        if spec.format is not None and name != "timestamp":
            raise ValueError(f"{name}: `format` applies to timestamp only")


# -- endpoints -------------------------------------------------------------------------------------


def _placeholders(template: str) -> set[str]:
    return {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(template) if name}


def _check_template(template: str, allowed: frozenset[str], where: str) -> None:
    names = _placeholders(template)
    if names - allowed:
        raise ValueError(
            f"{where}: unknown placeholder(s) {', '.join(sorted(names - allowed))}; "
            f"allowed: {', '.join(sorted(allowed)) or 'none'}"
        )
    sample = {"account_id": "ACC", "first_day": date(2025, 1, 31), "last_day": date(2025, 2, 1)}
    sample["end_day"] = sample["last_day"] + timedelta(days=1)
    try:
        template.format(**sample)
    except (ValueError, KeyError, IndexError, AttributeError) as exc:
        raise ValueError(f"{where}: {template!r} does not format ({exc})") from None


class AccountsEndpoint(_Strict):
    """The list of the customer's accounts (and their balances, when the bank gives them)."""

    path: str
    params: dict[str, str] = Field(default_factory=dict)
    records: FieldPath
    pagination: Pagination = NoPagination()
    fields: dict[str, FieldSpec]

    @model_validator(mode="after")
    def _valid(self) -> AccountsEndpoint:
        _check_field_map(self.fields, ACCOUNT_FIELDS, REQUIRED_ACCOUNT_FIELDS)
        _check_template(self.path, frozenset(), "path")
        for name, template in self.params.items():
            _check_template(template, frozenset(), f"params.{name}")
        return self


class TransactionsEndpoint(_Strict):
    """One account's transactions in a window of days [first_day, last_day] (bank-local dates)."""

    path: str
    params: dict[str, str] = Field(default_factory=dict)
    records: FieldPath
    pagination: Pagination = NoPagination()
    # Longest window one request may ask for; longer runs are read in consecutive chunks.
    max_days: int | None = Field(default=None, ge=1)
    fields: dict[str, FieldSpec]

    @model_validator(mode="after")
    def _valid(self) -> TransactionsEndpoint:
        _check_field_map(self.fields, TRANSACTION_FIELDS, REQUIRED_TRANSACTION_FIELDS)
        _check_template(self.path, WINDOW_PLACEHOLDERS, "path")
        for name, template in self.params.items():
            _check_template(template, WINDOW_PLACEHOLDERS, f"params.{name}")
        status = self.fields["status"]
        for code, standard in (status.values or {}).items():
            if standard not in STATUSES:
                raise ValueError(
                    f"fields.status.values.{code}: {standard!r} is not one of {', '.join(STATUSES)}"
                )
        return self


# -- the bank --------------------------------------------------------------------------------------


class RestBank(_Strict):
    """One bank's connector file."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{1,30}$")
    display_name: str
    bank_code: str  # e.g. the IFSC prefix HDFC; the standard record's bank_code unless mapped
    base_url: str = Field(pattern=r"^https?://")
    # When set in the environment, replaces base_url (a sandbox, a UAT host).
    base_url_env: EnvName | None = None
    # The bank's own time zone: timestamps without an offset are in it, and a transaction's
    # booking date is its timestamp's calendar date there.
    timezone: str = "UTC"
    auth: Auth
    accounts: AccountsEndpoint
    transactions: TransactionsEndpoint
    # Where the file was read from (set by the loader; for messages only).
    source_file: Path | None = Field(default=None, exclude=True)

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name in RESERVED_NAMES:
            raise ValueError(f"{name!r} is the name of another bankflow source")
        return name

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {zone!r} (an IANA name such as Asia/Kolkata)") from None
        return zone

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def resolved_base_url(self, environ: Mapping[str, str] | None = None) -> str:
        environ = os.environ if environ is None else environ
        override = environ.get(self.base_url_env) if self.base_url_env else None
        return (override or self.base_url).rstrip("/")

    def is_configured(self, environ: Mapping[str, str] | None = None) -> bool:
        """Whether every credential this bank needs is in the environment."""
        environ = os.environ if environ is None else environ
        return all(environ.get(name) for name in self.credential_envs())

    def credential_envs(self) -> tuple[str, ...]:
        """Names of the environment variables holding this bank's credentials."""
        names = ("api_key_env", "token_env", "client_id_env", "client_secret_env")
        return tuple(name for name in (getattr(self.auth, attr, None) for attr in names) if name)


# -- loading ---------------------------------------------------------------------------------------


def load_rest_bank(path: Path) -> RestBank:
    """Read and validate one connector file; errors name the file and each bad field."""
    bank = load_yaml_model(path, RestBank, RestConnectorConfigError)
    return bank.model_copy(update={"source_file": path})


def load_rest_banks(directories: Sequence[Path]) -> list[RestBank]:
    """Every `*.yaml`/`*.yml` file of the directories, by bank name; a name may appear once."""
    banks: dict[str, RestBank] = {}
    for directory in directories:
        if not directory.is_dir():
            raise RestConnectorConfigError(f"{directory}: REST connector directory does not exist")
        for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
            bank = load_rest_bank(path)
            if bank.name in banks:
                raise RestConnectorConfigError(
                    f"{path}: bank name {bank.name!r} is already defined in {banks[bank.name].source_file}"
                )
            banks[bank.name] = bank
    return [banks[name] for name in sorted(banks)]


def rest_connector_dirs(environ: Mapping[str, str] | None = None) -> list[Path]:
    """connectors/rest/ plus the directories in BANKFLOW_REST_CONNECTORS_DIR."""
    environ = os.environ if environ is None else environ
    extra = [Path(part) for part in environ.get(CONNECTORS_DIR_ENV, "").split(os.pathsep) if part]
    return [DEFAULT_CONNECTORS_DIR, *(path for path in extra if path.resolve() != DEFAULT_CONNECTORS_DIR)]


def configured_rest_banks(environ: Mapping[str, str] | None = None) -> list[RestBank]:
    return load_rest_banks(rest_connector_dirs(environ))
