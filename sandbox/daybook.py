"""Generation of one calendar day of the world: every account's transactions made on that day.

Everything here is a pure function of (seed, day): per-account draws come from
``random.Random(f"{seed}:{account_id}:{day}")`` and monthly amounts from ``Random(f"{seed}:{what}:{yyyy-mm}")``,
so any date-window query sees the same rows. Transactions come out as planned (``status="booked"`` with
their planned booking date); whether they are still pending is decided by the World, which knows today.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from sandbox.catalogue import (
    BGN_BILLS,
    BGN_MERCHANTS,
    BUSINESS_MERCHANTS,
    COMPANY_GBP_BILLS,
    EUR_CONSULTING_DAY,
    EUR_CUSTOMERS,
    EUR_MERCHANTS,
    EUR_SUPPLIERS,
    FEE_DAY,
    GBP_CUSTOMERS,
    GBP_MERCHANTS,
    GBP_SUPPLIERS,
    INR_BILLS,
    INR_MERCHANTS,
    INR_SUPPLIERS,
    INR_UPI_PAYERS,
    PEOPLE,
    RON_BILLS,
    RON_MERCHANTS,
    SAAS_MERCHANTS,
    SALARY_DAY,
    SAVINGS_TRANSFER_DAY,
    Bill,
    BusinessPartner,
    Merchant,
    PersonProfile,
)
from sandbox.layout import external_iban, stable_hex
from sandbox.model import Account, WorldTransaction
from sandbox.razorpay_ledger import MERCHANT_KEY, settlement_credit, settlement_on

CARD_LAG_DAYS = (0, 1, 2, 3)
_CARD_LAG_WEIGHTS = (15, 55, 20, 10)
_ATM_AMOUNTS = (2000, 3000, 4000, 5000, 6000, 8000, 10000)
_GBP_ATMS = ("LINK ATM CAMDEN HIGH ST", "LINK ATM KINGS CROSS", "NOTEMACHINE ISLINGTON", "HSBC ATM HOLBORN")
_EUR_ATMS = ("BNP PARIBAS PARIS 11", "SOCIETE GENERALE PARIS 3")
INSTALMENT_ACCOUNT = "northwind-gbp"
SETTLEMENT_CREDIT_KEY = "razorpay-settlement"  # the merchant's bank credit of a Razorpay payout
# Every tenth day, when it is a weekday (two such days in a row are never both at the weekend, so
# any 20 days hold one): a few rows a month, which the learned categoriser is sensitive to.
_INSTALMENT_EVERY_DAYS = 10
INSTALMENT_GAPS = (1, 2, 3)


@dataclass(frozen=True)
class Instalments:
    """A customer invoice paid in two parts: the first on ``day``, the balance ``gap`` days later,
    both quoting the invoice number."""

    day: dt.date
    customer: BusinessPartner
    invoice: str
    total_minor: int
    first_minor: int
    gap: int

    @property
    def balance_day(self) -> dt.date:
        return self.day + dt.timedelta(days=self.gap)


def instalments_from(seed: int, day: dt.date) -> Instalments | None:
    """The invoice whose first part Northwind receives on ``day``, if any. Its own stream, so both
    parts' days (and the company's books) derive it alike and no other row's draws move."""
    if day.weekday() >= 5 or day.toordinal() % _INSTALMENT_EVERY_DAYS != 3:
        return None
    rng = random.Random(f"{seed}:instalments:{INSTALMENT_ACCOUNT}:{day.isoformat()}")
    total = rng.randrange(80000, 400000)
    return Instalments(
        day=day,
        customer=rng.choice(GBP_CUSTOMERS),
        invoice=f"INV-{rng.randrange(10000, 100000)}",
        total_minor=total,
        first_minor=total * rng.randrange(30, 71) // 100,
        gap=rng.choice(INSTALMENT_GAPS),
    )


def world_row_id(seed: int, account_id: str, day: dt.date, key: str) -> str:
    """The world id of the row an account's ``key`` makes on ``day`` (its transaction date)."""
    return f"wt-{stable_hex(seed, account_id, day.isoformat(), key, length=16)}"


def generate_day(seed: int, accounts: Mapping[str, Account], day: dt.date) -> list[WorldTransaction]:
    """All transactions of every account whose transaction date is ``day``, in generation order."""
    book = _DayBook(seed, accounts, day)
    for person in PEOPLE:
        _person_day(book, person)
    _company_gbp_day(book)
    _company_eur_day(book)
    _romanian_day(book)
    _revolut_business_day(book)
    _dutch_day(book)
    _indian_showroom_day(book)
    _credit_card_day(book)
    _indian_merchant_day(book)
    _bulgarian_day(book)
    return book.rows


def minor_to_decimal(minor: int) -> Decimal:
    """Minor units (pence, cents) to a 2-decimal Decimal."""
    return Decimal(minor).scaleb(-2)


def scheduled(day: dt.date, day_of_month: int, roll: str = "next") -> bool:
    """Is ``day`` the effective date of a monthly payment due on ``day_of_month``?

    Payments due on a weekend move to the next working day (``roll="next"``, direct debits) or the
    previous one (``roll="prev"``, salaries). Bank holidays are ignored.
    """
    previous_month = (day.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    for month_start in (day.replace(day=1), previous_month):
        due = month_start.replace(day=day_of_month)
        while due.weekday() >= 5:
            due += dt.timedelta(days=1 if roll == "next" else -1)
        if due == day:
            return True
    return False


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's Poisson sampler (small means only)."""
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


class _DayBook:
    """Collects one day's rows and hands out the deterministic random streams."""

    def __init__(self, seed: int, accounts: Mapping[str, Account], day: dt.date) -> None:
        self.seed, self.accounts, self.day = seed, accounts, day
        self.rows: list[WorldTransaction] = []
        self._rngs: dict[str, random.Random] = {}

    @property
    def weekday(self) -> bool:
        return self.day.weekday() < 5

    def rng(self, account_key: str) -> random.Random:
        """The (seed, account, day) stream; draws continue in code order within the day."""
        if account_key not in self._rngs:
            account_id = self.accounts[account_key].account_id
            self._rngs[account_key] = random.Random(f"{self.seed}:{account_id}:{self.day.isoformat()}")
        return self._rngs[account_key]

    def monthly_rng(self, what: str) -> random.Random:
        return random.Random(f"{self.seed}:{what}:{self.day:%Y-%m}")

    def external_iban(self, name: str, country: str = "GB") -> str:
        return external_iban(self.seed, name, country)

    def add(
        self,
        account_key: str,
        key: str,
        minor: int,
        description: str,
        transaction_category: str,
        true_category: str,
        *,
        merchant: str | None = None,
        mcc: str | None = None,
        counterparty: str | None = None,
        counterparty_iban: str | None = None,
        counterparty_account: str | None = None,
        lag: int = 0,
        transfer_group: str | None = None,
        reference: str | None = None,
    ) -> WorldTransaction:
        account = self.accounts[account_key]
        other = self.accounts[counterparty_account] if counterparty_account else None
        row = WorldTransaction(
            world_id=world_row_id(self.seed, account.account_id, self.day, key),
            account_id=account.account_id,
            booking_date=self.day + dt.timedelta(days=lag),
            transaction_date=self.day,
            amount=minor_to_decimal(minor),
            currency=account.currency,
            description=description,
            merchant_name=merchant,
            mcc=mcc,
            counterparty_name=other.owner_name if other else counterparty,
            counterparty_iban=other.iban if other else counterparty_iban,
            counterparty_account_id=other.account_id if other else None,
            transaction_type="CREDIT" if minor > 0 else "DEBIT",
            transaction_category=transaction_category,
            true_category=true_category,
            transfer_group=transfer_group,
            status="booked",
            reference=reference,
        )
        self.rows.append(row)
        return row

    def transfer(
        self,
        kind: str,
        source: str,
        target: str,
        minor: int,
        out_text: str,
        in_text: str,
        minor_in: int | None = None,
    ) -> None:
        """Both legs of a transfer between two accounts of one owner: same day, same group, opposite sign.

        ``minor_in`` differs from ``minor`` only for an exchange between currencies.
        """
        group = f"tg-{stable_hex(self.seed, 'transfer', kind, source, self.day.isoformat(), length=12)}"
        legs = (
            (source, target, -minor, out_text),
            (target, source, minor if minor_in is None else minor_in, in_text),
        )
        for account_key, other, signed_minor, text in legs:
            self.add(
                account_key,
                f"transfer:{kind}",
                signed_minor,
                text,
                "TRANSFER",
                "transfer",
                counterparty_account=other,
                transfer_group=group,
            )


def _card_spend(book: _DayBook, account_key: str, merchants: Sequence[Merchant], per_day: float) -> list[int]:
    """Random card purchases; returns their amounts (minor units, positive) for round-ups."""
    rng = book.rng(account_key)
    mean = per_day * (1.2 if not book.weekday else 0.92)
    spent = []
    for index in range(_poisson(rng, mean)):
        merchant = rng.choices(merchants, weights=[m.weight for m in merchants])[0]
        minor = round(rng.triangular(merchant.low, merchant.high, merchant.mode))
        lag = rng.choices(CARD_LAG_DAYS, weights=_CARD_LAG_WEIGHTS)[0]
        text = f"CARD PAYMENT TO {merchant.statement_name} {rng.randrange(1000, 10000)}"
        book.add(
            account_key,
            f"card:{index}",
            -minor,
            text,
            "PURCHASE",
            merchant.true_category,
            merchant=merchant.name,
            mcc=merchant.mcc,
            counterparty=merchant.name,
            lag=lag,
        )
        spent.append(minor)
    return spent


def _atm(book: _DayBook, account_key: str, per_day: float, places: Sequence[str]) -> None:
    rng = book.rng(account_key)
    if rng.random() < per_day:
        lag = rng.choice((0, 1))
        book.add(
            account_key,
            "atm",
            -rng.choice(_ATM_AMOUNTS),
            f"CASH WITHDRAWAL {rng.choice(places)}",
            "ATM",
            "cash",
            mcc="6011",
            lag=lag,
        )


def _bill(book: _DayBook, account_key: str, bill: Bill) -> None:
    if scheduled(book.day, bill.day):
        rng = book.monthly_rng(f"bill:{account_key}:{bill.payee}")
        minor = round(rng.uniform(bill.low, bill.high))
        book.add(
            account_key,
            f"bill:{bill.payee}",
            -minor,
            bill.description,
            bill.transaction_category,
            bill.true_category,
            counterparty=bill.payee,
            counterparty_iban=book.external_iban(bill.payee),
        )


def _person_day(book: _DayBook, person: PersonProfile) -> None:
    current = person.current
    if scheduled(book.day, SALARY_DAY, roll="prev"):
        first, surname = book.accounts[current].owner_name.split(" ", 1)
        book.add(
            current,
            "salary",
            person.salary,
            "SALARY NORTHWIND TRADING",
            "CREDIT",
            "salary",
            counterparty_account="northwind-gbp",
        )
        book.add(
            "northwind-gbp",
            f"payroll:{person.party}",
            -person.salary,
            f"SALARY {first[0]} {surname.upper()}",
            "TRANSFER",
            "payroll",
            counterparty_account=current,
        )
    for bill in (person.rent, *person.bills):
        _bill(book, current, bill)
    for sub in person.subscriptions:
        if book.day.day == sub.day:
            lag = book.rng(current).choices(CARD_LAG_DAYS, weights=_CARD_LAG_WEIGHTS)[0]
            book.add(
                current,
                f"sub:{sub.merchant}",
                -sub.amount,
                f"CARD PAYMENT TO {sub.statement_name}",
                "PURCHASE",
                "subscriptions",
                merchant=sub.merchant,
                mcc=sub.mcc,
                counterparty=sub.merchant,
                lag=lag,
            )
    spent = _card_spend(book, current, GBP_MERCHANTS, person.card_per_day)
    _atm(book, current, person.atm_per_day, _GBP_ATMS)
    if person.monthly_fee and book.day.day == FEE_DAY:
        book.add(current, "fee", -person.monthly_fee, "MONTHLY ACCOUNT FEE", "FEE_CHARGE", "fees")
    if person.savings:
        _savings_day(book, person, spent)
    if person.eur_account:
        _card_spend(book, person.eur_account, EUR_MERCHANTS, 0.9)
        _atm(book, person.eur_account, 0.02, _EUR_ATMS)


def _savings_day(book: _DayBook, person: PersonProfile, spent: list[int]) -> None:
    assert person.savings is not None
    current, savings = person.current, person.savings
    initial_surname = book.accounts[current].owner_name.split(" ", 1)
    short = f"{initial_surname[0][0]} {initial_surname[1].upper()}"
    if person.round_ups:
        round_up = sum((100 - minor % 100) % 100 for minor in spent)
        if round_up:
            book.transfer(
                "round-up", current, savings, round_up, "ROUND UP TO SAVINGS POT", "ROUND UP FROM CURRENT"
            )
    if person.savings_transfer and scheduled(book.day, SAVINGS_TRANSFER_DAY):
        low, high = person.savings_transfer
        minor = book.monthly_rng(f"savings:{person.party}").randrange(low, high + 1, 1000)
        if book.accounts[current].bank == book.accounts[savings].bank:
            out_text, in_text = "TRANSFER TO SAVINGS POT", "TRANSFER FROM CURRENT ACCOUNT"
        else:
            out_text, in_text = f"TRANSFER TO {short} SAVINGS", f"TRANSFER FROM {short}"
        book.transfer("monthly", current, savings, minor, out_text, in_text)
    if person.round_ups and book.day.month % 3 == 0 and scheduled(book.day, 10):
        book.transfer(
            "top-up", savings, current, 50000, "TRANSFER TO CURRENT ACCOUNT", "TRANSFER FROM SAVINGS POT"
        )
    if book.day.day == 1:
        minor = book.monthly_rng(f"interest:{savings}").randrange(150, 1200)
        book.add(savings, "interest", minor, "INTEREST PAID", "INTEREST", "interest")


def _partner_payments(
    book: _DayBook,
    account_key: str,
    partners: Sequence[BusinessPartner],
    mean: float,
    amount_range: tuple[int, int, int],
    sign: int,
    text: str,
) -> None:
    rng = book.rng(account_key)
    for index in range(_poisson(rng, mean)):
        partner = rng.choice(partners)
        minor = round(rng.triangular(*amount_range))
        book.add(
            account_key,
            f"{'receipt' if sign > 0 else 'supplier'}:{index}",
            sign * minor,
            text.format(name=partner.statement_name, ref=rng.randrange(10000, 100000)),
            "CREDIT" if sign > 0 else "TRANSFER",
            "sales" if sign > 0 else "suppliers",
            counterparty=partner.name,
            counterparty_iban=book.external_iban(partner.name, partner.country),
        )


def _company_gbp_day(book: _DayBook) -> None:
    account = "northwind-gbp"
    if book.weekday:
        _partner_payments(
            book, account, GBP_CUSTOMERS, 1.6, (10000, 250000, 60000), 1, "FPS CREDIT {name} INV-{ref}"
        )
        _partner_payments(
            book, account, GBP_SUPPLIERS, 1.3, (8000, 200000, 40000), -1, "FPS PAYMENT {name} REF PO-{ref}"
        )
    _instalments(book)
    for bill in COMPANY_GBP_BILLS:
        _bill(book, account, bill)
    _card_spend(book, account, BUSINESS_MERCHANTS, 0.35)
    if book.day.day == FEE_DAY:
        minor = book.monthly_rng("fee:northwind-gbp").randrange(1200, 3000)
        book.add(account, "fee", -minor, "COMMERCIAL ACCOUNT CHARGES", "FEE_CHARGE", "fees")


def _instalments(book: _DayBook) -> None:
    """Invoices paid in parts: today's first parts and the balances of earlier days' invoices."""
    parts = []
    started = instalments_from(book.seed, book.day)
    if started is not None:
        parts.append(("instalment:1", started, started.first_minor, "PART PAYMENT"))
    for gap in INSTALMENT_GAPS:
        earlier = instalments_from(book.seed, book.day - dt.timedelta(days=gap))
        if earlier is not None and earlier.gap == gap:
            balance = earlier.total_minor - earlier.first_minor
            parts.append((f"instalment:2:{gap}", earlier, balance, "BALANCE"))
    for key, plan, minor, label in parts:
        book.add(
            INSTALMENT_ACCOUNT,
            key,
            minor,
            f"FPS CREDIT {plan.customer.statement_name} {plan.invoice} {label}",
            "CREDIT",
            "sales",
            counterparty=plan.customer.name,
            counterparty_iban=book.external_iban(plan.customer.name, plan.customer.country),
        )


def _company_eur_day(book: _DayBook) -> None:
    account = "northwind-eur"
    if book.weekday:
        _partner_payments(
            book, account, EUR_CUSTOMERS, 0.8, (20000, 200000, 60000), 1, "SEPA CREDIT {name} {ref}"
        )
        _partner_payments(
            book, account, EUR_SUPPLIERS, 1.0, (10000, 150000, 40000), -1, "SEPA TRANSFER {name} {ref}"
        )
    if scheduled(book.day, EUR_CONSULTING_DAY, roll="prev"):
        minor = book.monthly_rng("consulting:chloe").randrange(60000, 90001, 500)
        book.add(
            account,
            "consulting:chloe",
            -minor,
            "SEPA TRANSFER C DUBOIS CONSULTING",
            "TRANSFER",
            "suppliers",
            counterparty_account="chloe-eur",
        )
        book.add(
            "chloe-eur",
            "consulting",
            minor,
            "NORTHWIND TRADING LTD CONSULTING FEE",
            "CREDIT",
            "income_other",
            counterparty_account=account,
        )
    if book.day.day == FEE_DAY:
        minor = book.monthly_rng("fee:northwind-eur").randrange(800, 1500)
        book.add(account, "fee", -minor, "ACCOUNT CHARGES", "FEE_CHARGE", "fees")


def _romanian_day(book: _DayBook) -> None:
    """Bogdan's RON account at Banca Transilvania: card spend, utilities, a monthly top-up."""
    account = "bogdan-bt"
    _card_spend(book, account, RON_MERCHANTS, 1.1)
    for bill in RON_BILLS:
        _bill(book, account, bill)
    if scheduled(book.day, 3):
        minor = book.monthly_rng("top-up:bogdan-bt").randrange(500000, 800001, 5000)
        book.add(
            account,
            "top-up",
            minor,
            "ALIMENTARE CONT POPESCU ION",
            "CREDIT",
            "income_other",
            counterparty="Popescu Ion",
            counterparty_iban=book.external_iban("Popescu Ion", "DE"),
        )


def _revolut_business_day(book: _DayBook) -> None:
    """Northwind's Revolut Business: SaaS card spend, a monthly top-up from Lloyds, weekly GBP->EUR exchanges."""
    gbp, eur = "northwind-rvb-gbp", "northwind-rvb-eur"
    _card_spend(book, gbp, SAAS_MERCHANTS, 0.25)
    _card_spend(book, eur, EUR_MERCHANTS, 0.3)
    if scheduled(book.day, 2):
        minor = book.monthly_rng("top-up:northwind-rvb").randrange(300000, 600001, 10000)
        book.transfer(
            "top-up", "northwind-gbp", gbp, minor, "TO NORTHWIND REVOLUT", "FROM NORTHWIND TRADING LTD"
        )
    if book.day.weekday() == 0:
        rng = book.rng(gbp)
        minor_out = rng.randrange(20000, 80001, 5000)
        rate = Decimal(rng.randrange(11400, 11900)) / 10000
        minor_in = int((Decimal(minor_out) * rate).to_integral_value())
        book.transfer(
            "exchange",
            gbp,
            eur,
            minor_out,
            f"EXCHANGED TO EUR @ {rate}",
            f"EXCHANGED FROM GBP @ {rate}",
            minor_in,
        )


def _dutch_day(book: _DayBook) -> None:
    """Chloe's ING account in the Netherlands: Dutch freelance income, card spend, a transfer from her Revolut."""
    account = "chloe-ing"
    _card_spend(book, account, EUR_MERCHANTS, 0.5)
    if scheduled(book.day, 20, roll="prev"):
        minor = book.monthly_rng("income:chloe-ing").randrange(90000, 140001, 500)
        book.add(
            account,
            "freelance",
            minor,
            "ONTVANGEN BETALING STUDIO VERMEER BV",
            "CREDIT",
            "income_other",
            counterparty="Studio Vermeer BV",
            counterparty_iban=book.external_iban("Studio Vermeer BV", "NL"),
        )
    if scheduled(book.day, 5):
        minor = book.monthly_rng("transfer:chloe-ing").randrange(5000, 20001, 2500)
        book.transfer("to-ing", "chloe-eur", account, minor, "TO C DUBOIS ING", "VAN C DUBOIS")


def _indian_showroom_day(book: _DayBook) -> None:
    """Kaveri's showroom: UPI collections and a debit card on ICICI, swept every Friday to SBI,
    which pays the utilities, the odd supplier by RTGS, and gives the cash for the till."""
    icici, sbi = "kaveri-icici", "kaveri-sbi"
    rng = book.rng(icici)
    for index in range(_poisson(rng, 3.0 * (1.3 if not book.weekday else 1.0))):
        payer = rng.choice(INR_UPI_PAYERS)
        rrn = rng.randrange(10**11, 10**12)
        book.add(
            icici,
            f"upi:{index}",
            round(rng.triangular(20000, 1500000, 250000)),
            f"UPI/CR/{rrn}/{payer}/SAREE PURCHASE",
            "CREDIT",
            "sales",
            counterparty=payer.title(),
        )
    _card_spend(book, icici, INR_MERCHANTS, 0.3)
    if book.day.weekday() == 4:
        minor = rng.randrange(10000000, 14000001, 100000)
        ref = rng.randrange(10**11, 10**12)
        book.transfer(
            "sweep",
            icici,
            sbi,
            minor,
            f"IMPS/P2A/{ref}/KAVERI HANDLOOMS SBI",
            f"IMPS/P2A/{ref}/KAVERI HANDLOOMS ICICI",
        )
    if book.day.day == FEE_DAY:
        minor = book.monthly_rng(f"fee:{icici}").randrange(23600, 59001, 100)
        book.add(icici, "fee", -minor, "UPI MERCHANT CHARGES INCL GST", "FEE_CHARGE", "fees")

    rng = book.rng(sbi)
    for bill in INR_BILLS:
        if scheduled(book.day, bill.day):
            minor = round(book.monthly_rng(f"bill:{sbi}:{bill.payee}").uniform(bill.low, bill.high))
            book.add(
                sbi,
                f"bill:{bill.payee}",
                -minor,
                bill.description,
                bill.transaction_category,
                bill.true_category,
                counterparty=bill.payee,
            )
    if book.weekday and rng.random() < 0.1:
        supplier = rng.choice(INR_SUPPLIERS)
        book.add(
            sbi,
            "supplier",
            -rng.randrange(5000000, 30000001, 100),
            f"RTGS DR-{supplier.statement_name}-INV{rng.randrange(1000, 10000)}",
            "TRANSFER",
            "suppliers",
            counterparty=supplier.name,
        )
    if rng.random() < 0.08:
        book.add(
            sbi,
            "atm",
            -rng.randrange(200000, 2000001, 50000),
            "ATM WDL SBI ATM T NAGAR CHENNAI",
            "ATM",
            "cash",
            mcc="6011",
            lag=rng.choice((0, 1)),
        )


def _credit_card_day(book: _DayBook) -> None:
    """Alice's credit card: card spend, and a monthly repayment from her current account."""
    card = "alice-card"
    _card_spend(book, card, GBP_MERCHANTS, 0.6)
    if scheduled(book.day, 12):
        minor = book.monthly_rng("repayment:alice-card").randrange(30000, 50001, 500)
        book.transfer(
            "card-repayment",
            "alice-current",
            card,
            minor,
            "BARCLAYCARD PAYMENT",
            "PAYMENT RECEIVED - THANK YOU",
        )


_INR_SUPPLIERS = ("Sri Murugan Weavers", "Pochampally Handloom Co-op", "Surat Silk Mills", "Delhivery Ltd")
_INR_CUSTOMERS = ("Fabindia Overseas Pvt Ltd", "Taj Boutique Hotels", "Craftsvilla Retail LLP")


def _indian_merchant_day(book: _DayBook) -> None:
    """Kaveri Handlooms' HDFC current account: Razorpay settlements (NEFT credits carrying the UTR),
    the odd wholesale customer paying by NEFT, suppliers, rent, payroll and bank charges."""
    account = MERCHANT_KEY
    settlement = settlement_on(book.seed, book.day)
    if settlement is not None:
        credit = settlement_credit(book.seed, settlement)
        book.add(
            account,
            SETTLEMENT_CREDIT_KEY,
            settlement.amount,
            credit.description,
            "CREDIT",
            "sales",
            counterparty="Razorpay Software Pvt Ltd",
            reference=credit.reference,
            lag=credit.lag_days,
        )
    rng = book.rng(account)
    if book.weekday:
        for index in range(_poisson(rng, 0.15)):
            customer = rng.choice(_INR_CUSTOMERS)
            utr = f"ICICN{book.day:%y}{book.day.timetuple().tm_yday:03d}{rng.randrange(10**6):06d}"
            book.add(
                account,
                f"wholesale:{index}",
                rng.randrange(2500000, 20000001, 100),
                f"NEFT CR-ICIC0000104-{customer.upper()}-{utr}",
                "CREDIT",
                "sales",
                counterparty=customer,
                reference=utr,
            )
        for index in range(_poisson(rng, 1.0)):
            supplier = rng.choice(_INR_SUPPLIERS)
            book.add(
                account,
                f"supplier:{index}",
                -rng.randrange(5000000, 40000001, 100),
                f"NEFT DR-{supplier.upper()}-INV{rng.randrange(1000, 10000)}",
                "TRANSFER",
                "suppliers",
                counterparty=supplier,
            )
    if scheduled(book.day, 5):
        book.add(
            account,
            "rent",
            -18500000,
            "NEFT DR-LAKSHMI ESTATES-RENT",
            "STANDING_ORDER",
            "rent",
            counterparty="Lakshmi Estates",
        )
    if scheduled(book.day, 28, roll="prev"):
        minor = book.monthly_rng(f"payroll:{account}").randrange(42000000, 56000001, 100000)
        book.add(account, "payroll", -minor, "SALARY BULK UPLOAD KAVERI STAFF", "TRANSFER", "payroll")
    if book.day.day == FEE_DAY:
        minor = book.monthly_rng(f"fee:{account}").randrange(50000, 150001, 100)
        book.add(account, "fee", -minor, "CHARGES FOR NEFT/RTGS AND SMS ALERTS", "FEE_CHARGE", "fees")


_BG_ATMS = ("FIBANK ATM SOFIA VITOSHA BLVD", "FIBANK ATM SOFIA MALL OF SOFIA")
# The lev is pegged to the euro: 1 EUR = 1.95583 BGN.
_BGN_PER_EUR = Decimal("1.95583")


def _bulgarian_day(book: _DayBook) -> None:
    """Desislava's Fibank accounts in Sofia: a freelancer paid in lev by Bulgarian clients and in
    euro by a German one, who changes euro into lev monthly and pays her bills and cards in lev.
    Only her two accounts: other accounts' rows do not depend on these draws."""
    bgn, eur = "desislava-fib-bgn", "desislava-fib-eur"
    _card_spend(book, bgn, BGN_MERCHANTS, 1.4)
    _atm(book, bgn, 0.05, _BG_ATMS)
    # Her euro card: trips and online orders.
    _card_spend(book, eur, EUR_MERCHANTS, 0.2)
    for bill in BGN_BILLS:
        if scheduled(book.day, bill.day):
            minor = round(book.monthly_rng(f"bill:{bgn}:{bill.payee}").uniform(bill.low, bill.high))
            book.add(
                bgn,
                f"bill:{bill.payee}",
                -minor,
                bill.description,
                bill.transaction_category,
                bill.true_category,
                counterparty=bill.payee,
                counterparty_iban=book.external_iban(bill.payee, "BG"),
            )
    if scheduled(book.day, 10, roll="prev"):
        minor = book.monthly_rng(f"income:{bgn}").randrange(120000, 180001, 1000)
        book.add(
            bgn,
            "freelance",
            minor,
            "HONORAR DIZAYN STUDIO VITOSHA OOD",
            "CREDIT",
            "income_other",
            counterparty="Studio Vitosha OOD",
            counterparty_iban=book.external_iban("Studio Vitosha OOD", "BG"),
        )
    if scheduled(book.day, 20, roll="prev"):
        minor = book.monthly_rng(f"income:{eur}").randrange(120000, 200001, 500)
        book.add(
            eur,
            "freelance",
            minor,
            "SEPA CREDIT NORDLICHT DESIGN GMBH INVOICE",
            "CREDIT",
            "income_other",
            counterparty="Nordlicht Design GmbH",
            counterparty_iban=book.external_iban("Nordlicht Design GmbH", "DE"),
        )
    if scheduled(book.day, 22):
        minor_out = book.monthly_rng(f"exchange:{eur}").randrange(50000, 100001, 5000)
        minor_in = int((Decimal(minor_out) * _BGN_PER_EUR).to_integral_value())
        book.transfer(
            "exchange",
            eur,
            bgn,
            minor_out,
            f"EXCHANGED EUR TO BGN @ {_BGN_PER_EUR}",
            f"EXCHANGED FROM EUR @ {_BGN_PER_EUR}",
            minor_in,
        )
    if book.day.day == FEE_DAY:
        minor = book.monthly_rng(f"fee:{bgn}").randrange(300, 601, 10)
        book.add(bgn, "fee", -minor, "MESECHNA TAKSA OBSLUZHVANE", "FEE_CHARGE", "fees")
    if book.day.day == 1:
        minor = book.monthly_rng(f"interest:{eur}").randrange(5, 60)
        book.add(eur, "interest", minor, "LIHVA PO SMETKA", "INTEREST", "interest")
