"""Who banks where: the world's parties, banks and accounts, derived deterministically from a seed."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from decimal import Decimal

from sandbox.iban import gb_iban, make_iban
from sandbox.model import Account, AccountType, Bank, Party, PartyKind

BANKS: dict[str, Bank] = {
    "monzo": Bank("ob-monzo", "Monzo", "MONZ", "MONZGB2L", "04"),
    "barclays": Bank("ob-barclays", "Barclays", "BARC", "BARCGB22", "20"),
    "hsbc": Bank("ob-hsbc", "HSBC", "HBUK", "HBUKGB4B", "40"),
    "lloyds": Bank("ob-lloyds", "Lloyds Bank", "LOYD", "LOYDGB2L", "30"),
    "revolut": Bank("ob-revolut", "Revolut", "REVO", "REVOLT21", "04"),
    "barclaycard": Bank("ob-barclaycard", "Barclaycard", "BARC", "BARCGB22", "20"),
    # Reached through Berlin Group PSD2 (and GoCardless), not UK open banking.
    "bt": Bank("ro-btrl", "Banca Transilvania", "BTRL", "BTRLRO22", ""),
    "revolut_business": Bank("revolut-business", "Revolut Business", "REVO", "REVOGB21", "04"),
    # Indian banks reached through their own REST APIs (declarative connectors, connectors/rest/).
    "icici": Bank("icici", "ICICI Bank", "ICIC", "ICICINBB", ""),
    "sbi": Bank("sbi", "State Bank of India", "SBIN", "SBININBB", ""),
    "ing": Bank("ING_INGBNL2A", "ING", "INGB", "INGBNL2A", ""),
    # An Indian bank, reached through its own REST API (the declarative "hdfc" connector).
    "hdfc": Bank("hdfc", "HDFC Bank", "HDFC", "HDFCINBB", ""),
    # First Investment Bank, Sofia: reached by scripting its retail e-banking (my.fibank.bg).
    "fibank": Bank("bg-fibank", "Fibank", "FINV", "FINVBGSF", ""),
}

_PARTIES: tuple[tuple[str, str, PartyKind], ...] = (
    ("alice", "Alice Martin", "person"),
    ("bogdan", "Bogdan Popescu", "person"),
    ("chloe", "Chloe Dubois", "person"),
    ("northwind", "Northwind Trading Ltd", "company"),
    # An Indian online shop taking payments through Razorpay (sandbox.razorpay_ledger).
    ("kaveri", "Kaveri Handlooms Pvt Ltd", "company"),
    # A freelance designer in Sofia who banks at Fibank (sandbox.fibank).
    ("desislava", "Desislava Ivanova", "person"),
)


@dataclass(frozen=True)
class _AccountSpec:
    key: str
    party: str
    bank: str
    currency: str
    account_type: AccountType
    display_name: str
    opening_range: tuple[int, int]  # whole currency units
    overdraft: int
    # Connectors that expose the account; two for one account = the same money seen twice.
    providers: tuple[str, ...] = ("truelayer",)


_ACCOUNTS: tuple[_AccountSpec, ...] = (
    _AccountSpec(
        "alice-current", "alice", "monzo", "GBP", "TRANSACTION", "Current Account", (2000, 3500), 500
    ),
    _AccountSpec("alice-savings", "alice", "monzo", "GBP", "SAVINGS", "Savings Pot", (4000, 9000), 0),
    _AccountSpec(
        "bogdan-current", "bogdan", "barclays", "GBP", "TRANSACTION", "Bank Account", (800, 2000), 1000
    ),
    _AccountSpec("bogdan-savings", "bogdan", "hsbc", "GBP", "SAVINGS", "Flexible Saver", (2000, 6000), 0),
    _AccountSpec(
        "chloe-current", "chloe", "hsbc", "GBP", "TRANSACTION", "Advance Account", (2000, 4000), 1000
    ),
    _AccountSpec(
        "chloe-eur",
        "chloe",
        "revolut",
        "EUR",
        "TRANSACTION",
        "EUR Account",
        (900, 2000),
        0,
        ("truelayer", "gocardless"),
    ),
    _AccountSpec(
        "northwind-gbp",
        "northwind",
        "lloyds",
        "GBP",
        "TRANSACTION",
        "Business Current Account",
        (90000, 130000),
        5000,
    ),
    _AccountSpec(
        "northwind-eur",
        "northwind",
        "barclays",
        "EUR",
        "TRANSACTION",
        "Euro Business Account",
        (40000, 60000),
        0,
    ),
    _AccountSpec(
        "bogdan-bt",
        "bogdan",
        "bt",
        "RON",
        "TRANSACTION",
        "Cont Curent",
        (3000, 9000),
        0,
        ("berlin_group", "gocardless"),
    ),
    _AccountSpec(
        "northwind-rvb-gbp",
        "northwind",
        "revolut_business",
        "GBP",
        "TRANSACTION",
        "Main",
        (20000, 40000),
        0,
        ("revolut",),
    ),
    _AccountSpec(
        "northwind-rvb-eur",
        "northwind",
        "revolut_business",
        "EUR",
        "TRANSACTION",
        "Euro",
        (8000, 15000),
        0,
        ("revolut",),
    ),
    # A credit card: owed money is a negative balance; TrueLayer serves it under /cards.
    _AccountSpec(
        "alice-card", "alice", "barclaycard", "GBP", "CREDIT_CARD", "Barclaycard Platinum", (-900, -200), 0
    ),
    _AccountSpec(
        "chloe-ing", "chloe", "ing", "EUR", "TRANSACTION", "Betaalrekening", (1500, 4000), 0, ("gocardless",)
    ),
    # Kaveri's Razorpay settlements arrive here as NEFT credits carrying the settlement UTR.
    _AccountSpec(
        "kaveri-hdfc",
        "kaveri",
        "hdfc",
        "INR",
        "TRANSACTION",
        "Current Account",
        (300000, 600000),
        0,
        ("hdfc",),
    ),
    # Kaveri's showroom takes UPI payments on ICICI and sweeps them weekly to SBI, which pays the bills.
    _AccountSpec(
        "kaveri-icici",
        "kaveri",
        "icici",
        "INR",
        "TRANSACTION",
        "Collections Account",
        (150000, 400000),
        0,
        ("icici",),
    ),
    _AccountSpec(
        "kaveri-sbi", "kaveri", "sbi", "INR", "TRANSACTION", "Current Account", (500000, 1000000), 0, ("sbi",)
    ),
    # Desislava's lev and euro accounts at Fibank, seen only through its e-banking.
    _AccountSpec(
        "desislava-fib-bgn",
        "desislava",
        "fibank",
        "BGN",
        "TRANSACTION",
        "Разплащателна сметка",
        (3000, 8000),
        0,
        ("fibank",),
    ),
    _AccountSpec(
        "desislava-fib-eur",
        "desislava",
        "fibank",
        "EUR",
        "TRANSACTION",
        "Разплащателна сметка EUR",
        (2000, 6000),
        0,
        ("fibank",),
    ),
)


_INDIAN_ACCOUNT_DIGITS = {"icici": 12, "sbi": 11}


def stable_hex(*parts: object, length: int = 8) -> str:
    """A short hex digest of the parts; stable across processes (unlike the salted built-in hash())."""
    return hashlib.sha256(":".join(str(part) for part in parts).encode()).hexdigest()[:length]


def party_id(seed: int, key: str) -> str:
    return f"pty-{stable_hex(seed, 'party', key)}"


def account_id(seed: int, key: str) -> str:
    return f"acc-{stable_hex(seed, 'account', key)}"


def build_parties(seed: int) -> list[Party]:
    """The world's customers, in a stable order."""
    return [Party(party_id(seed, key), name, kind) for key, name, kind in _PARTIES]


def build_accounts(seed: int) -> list[Account]:
    """The world's accounts, in a stable order; every field depends only on the seed."""
    names = {key: name for key, name, _ in _PARTIES}
    return [_build_account(seed, spec, names[spec.party]) for spec in _ACCOUNTS]


def _build_account(seed: int, spec: _AccountSpec, owner_name: str) -> Account:
    rng = random.Random(f"{seed}:account-details:{spec.key}")
    bank = BANKS[spec.bank]
    sort_code = number = iban = None
    if spec.account_type == "CREDIT_CARD":
        number = f"{rng.randrange(10**4):04d}"
    elif spec.bank in _INDIAN_ACCOUNT_DIGITS:
        # No IBANs in India: the bank's own account number (ICICI 12 digits, SBI 11).
        digits = _INDIAN_ACCOUNT_DIGITS[spec.bank]
        number = f"{rng.randrange(10 ** (digits - 1), 10**digits)}"
    elif spec.bank == "bt":
        # RO IBAN: ROkk + 4-letter bank code + 16 alphanumerics.
        iban = make_iban("RO", f"BTRL{rng.randrange(10**16):016d}")
    elif spec.bank == "fibank":
        # BG IBAN: BGkk + bank code + 4-digit branch + 2-digit account kind + 8-digit number.
        iban = make_iban(
            "BG", f"FINV9150{'10' if spec.currency == 'BGN' else '14'}{rng.randrange(10**8):08d}"
        )
    elif spec.bank == "ing":
        iban = make_iban("NL", f"INGB{rng.randrange(10**10):010d}")
    elif spec.bank == "hdfc":
        # India has no IBANs: a 14-digit HDFC account number (the IFSC names the branch).
        number = f"{rng.randrange(10**13, 10**14)}"
    elif spec.currency == "EUR" and spec.bank in ("revolut", "revolut_business"):
        # Revolut's EUR accounts carry Lithuanian IBANs: LTkk + 5-digit bank code + 11-digit account.
        iban = make_iban("LT", f"32500{rng.randrange(10**11):011d}")
    else:
        if spec.bank == "monzo":
            sort_code = "04-00-04"
        else:
            rest = f"{rng.randrange(10**4):04d}"
            sort_code = f"{bank.sort_code_prefix}-{rest[:2]}-{rest[2:]}"
        number = f"{rng.randrange(10**7, 10**8)}"
        iban = gb_iban(bank.bank_code, sort_code, number)
    low, high = spec.opening_range
    opening = Decimal(rng.randrange(low * 100, high * 100)).scaleb(-2)
    return Account(
        account_id=account_id(seed, spec.key),
        key=spec.key,
        owner_party_id=party_id(seed, spec.party),
        owner_name=owner_name,
        bank=bank,
        iban=iban,
        sort_code=sort_code,
        number=number,
        swift_bic=bank.swift_bic,
        currency=spec.currency,
        account_type=spec.account_type,
        display_name=spec.display_name,
        opening_balance=opening,
        overdraft=Decimal(spec.overdraft * 100).scaleb(-2),
        providers=spec.providers,
    )


def external_gb_iban(seed: int, name: str) -> str:
    """A stable, valid GB IBAN for a counterparty outside the world (landlord, supplier, customer)."""
    rng = random.Random(f"{seed}:external-iban:{name}")
    bank = rng.choice(["NWBK", "BARC", "LOYD", "HBUK", "MIDL", "SRLG"])
    sort_code = f"{rng.randrange(10**6):06d}"
    return gb_iban(bank, sort_code, f"{rng.randrange(10**7, 10**8)}")


def external_iban(seed: int, name: str, country: str = "GB") -> str:
    """A stable, valid IBAN in ``country`` (GB, DE, NL or BG) for a counterparty outside the world."""
    if country == "GB":
        return external_gb_iban(seed, name)
    rng = random.Random(f"{seed}:external-iban:{country}:{name}")
    if country == "DE":
        return make_iban("DE", f"{rng.randrange(10**7, 10**8)}{rng.randrange(10**10):010d}")
    if country == "NL":
        bank = rng.choice(["ABNA", "INGB", "RABO"])
        return make_iban("NL", f"{bank}{rng.randrange(10**10):010d}")
    if country == "BG":
        bank = rng.choice(["UNCR", "STSA", "BPBI", "RZBB"])
        return make_iban("BG", f"{bank}{rng.randrange(10**4):04d}10{rng.randrange(10**8):08d}")
    raise ValueError(f"no IBAN layout for {country}")
