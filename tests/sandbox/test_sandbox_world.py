"""The synthetic world: determinism, windows, transfers, pending rules, balances, answer key."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from decimal import Decimal

import pytest
from sandbox_oauth_flow import SEED, TODAY

from sandbox.daybook import CARD_LAG_DAYS, SETTLEMENT_CREDIT_KEY, world_row_id
from sandbox.iban import is_valid_iban
from sandbox.world import TRUE_CATEGORIES, World, WorldTransaction

DAY = dt.timedelta(days=1)
CARD_CATEGORIES = {"PURCHASE", "ATM"}


def all_booked(world: World) -> list[WorldTransaction]:
    return [
        txn
        for account in world.accounts
        for txn in world.booked(account.account_id, world.history_start, world.today + DAY)
    ]


def test_same_seed_and_today_give_the_same_world(world: World) -> None:
    again = World(SEED, TODAY)
    assert again.accounts == world.accounts
    assert again.parties == world.parties
    assert all_booked(again) == all_booked(world)
    assert [again.pending(a.account_id) for a in again.accounts] == [
        world.pending(a.account_id) for a in world.accounts
    ]


def test_another_seed_gives_another_world(world: World) -> None:
    other = World(SEED + 1, TODAY)
    assert {a.account_id for a in other.accounts}.isdisjoint(a.account_id for a in world.accounts)
    assert [a.iban for a in other.accounts] != [a.iban for a in world.accounts]


def test_window_queries_agree_on_shared_days(world: World) -> None:
    account = world.accounts[0].account_id
    start, middle, end = TODAY - dt.timedelta(days=60), TODAY - dt.timedelta(days=25), TODAY + DAY
    whole = world.booked(account, start, end)
    assert whole == world.booked(account, start, middle) + world.booked(account, middle, end)
    # A fresh world asked only for a small window (so it generates only those days) agrees too.
    fresh = World(SEED, TODAY)
    assert fresh.booked(account, middle, middle + 3 * DAY) == [
        txn for txn in whole if middle <= txn.booking_date < middle + 3 * DAY
    ]


def test_days_do_not_depend_on_today(world: World) -> None:
    later = World(SEED, TODAY + dt.timedelta(days=10))
    for account in world.accounts:
        start = (
            later.history_start + max(CARD_LAG_DAYS) * DAY
        )  # earlier card payments fall outside its history
        assert later.booked(account.account_id, start, TODAY + DAY) == world.booked(
            account.account_id, start, TODAY + DAY
        )


def test_booked_rows_are_ordered_bounded_and_well_formed(world: World) -> None:
    rows = all_booked(world)
    assert len({txn.world_id for txn in rows}) == len(rows)
    for account in world.accounts:
        own = [txn for txn in rows if txn.account_id == account.account_id]
        assert own == sorted(own, key=lambda txn: (txn.booking_date, txn.world_id))
        assert all(txn.currency == account.currency for txn in own)
    for txn in rows:
        assert txn.status == "booked"
        assert world.history_start <= txn.booking_date <= TODAY
        assert isinstance(txn.amount, Decimal) and txn.amount.as_tuple().exponent == -2 and txn.amount != 0
        assert txn.transaction_type == ("CREDIT" if txn.amount > 0 else "DEBIT")
        assert txn.true_category in TRUE_CATEGORIES
        lag = (txn.booking_date - txn.transaction_date).days
        # Only card payments and Razorpay payout credits are booked after the day they are made.
        payout = txn.world_id == world_row_id(
            world.seed, txn.account_id, txn.transaction_date, SETTLEMENT_CREDIT_KEY
        )
        assert (
            lag == 0
            or (txn.transaction_category in CARD_CATEGORIES and lag <= max(CARD_LAG_DAYS))
            or (payout and lag <= 2)
        )
        if txn.transaction_category == "PURCHASE":
            assert txn.mcc and txn.merchant_name
        if txn.counterparty_iban:
            assert is_valid_iban(txn.counterparty_iban)


def test_history_covers_400_days_with_realistic_volume(world: World) -> None:
    rows = all_booked(world)
    assert world.history_start == TODAY - dt.timedelta(days=400)
    assert min(txn.booking_date for txn in rows) == world.history_start
    assert max(txn.booking_date for txn in rows) == TODAY
    per_account = Counter(txn.account_id for txn in rows)
    assert len(rows) / len(world.accounts) / 401 > 1  # about 1-6 a day on average
    assert all(count > 20 for count in per_account.values())


def test_monthly_patterns(world: World) -> None:
    may = [txn for txn in all_booked(world) if dt.date(2025, 5, 1) <= txn.booking_date < dt.date(2025, 6, 1)]
    salaries = [txn for txn in may if txn.true_category == "salary"]
    # Northwind pays the three people; Kaveri's bulk INR payroll goes to staff outside the world.
    payroll = [txn for txn in may if txn.true_category == "payroll" and txn.currency == "GBP"]
    assert len(salaries) == 3 and sorted(t.amount for t in salaries) == sorted(-t.amount for t in payroll)
    assert all(t.booking_date == dt.date(2025, 5, 23) for t in salaries)  # 25 May 2025 is a Sunday
    assert len([t for t in may if t.true_category == "rent"]) == 5  # three people and two companies
    mccs = {t.mcc for t in may if t.transaction_category == "PURCHASE"}
    assert {"5411", "5814", "4111"} <= mccs
    assert Counter(t.currency for t in may)["EUR"] > 0


def test_internal_transfer_legs_balance_per_group(world: World) -> None:
    groups: dict[str, list[WorldTransaction]] = defaultdict(list)
    for txn in all_booked(world):
        if txn.transfer_group:
            groups[txn.transfer_group].append(txn)
    assert len(groups) > 24
    owner = {a.account_id: a.owner_party_id for a in world.accounts}
    for legs in groups.values():
        assert len(legs) == 2
        out, into = sorted(legs, key=lambda txn: txn.amount)
        assert out.amount < 0 < into.amount
        if out.currency == into.currency:
            assert out.amount + into.amount == 0
        else:  # an exchange between two currency accounts of one owner
            assert "EXCHANGED" in out.description and "EXCHANGED" in into.description
        assert out.booking_date == into.booking_date
        assert out.account_id != into.account_id and owner[out.account_id] == owner[into.account_id]
        assert out.counterparty_account_id == into.account_id
        assert out.true_category == into.true_category == "transfer"
    pairs = world.transfer_pairs(world.history_start, TODAY + DAY)
    assert len(pairs) == len(groups)
    assert {frozenset(pair) for pair in pairs} == {frozenset(t.world_id for t in g) for g in groups.values()}


def test_pending_card_payments(world: World) -> None:
    pending = [txn for account in world.accounts for txn in world.pending(account.account_id)]
    assert pending, "a Sunday world has card payments still pending"
    booked_ids = {txn.world_id for txn in all_booked(world)}
    for txn in pending:
        assert txn.status == "pending" and txn.booking_date is None
        assert txn.transaction_category in CARD_CATEGORIES
        assert TODAY - dt.timedelta(days=max(CARD_LAG_DAYS)) <= txn.transaction_date <= TODAY
        assert txn.world_id not in booked_ids
    # Days later the same payments are booked, within the lag, after the old today.
    later = World(SEED, TODAY + dt.timedelta(days=4))
    later_rows = {
        txn.world_id: txn
        for account in later.accounts
        for txn in later.booked(account.account_id, TODAY - 3 * DAY, later.today + DAY)
    }
    for txn in pending:
        booked = later_rows[txn.world_id]
        assert TODAY < booked.booking_date <= txn.transaction_date + max(CARD_LAG_DAYS) * DAY
        assert booked.amount == txn.amount and booked.description == txn.description


def test_balance_arithmetic(world: World) -> None:
    for account in world.accounts:
        rows = world.booked(account.account_id, world.history_start, TODAY + DAY)
        assert world.balance(account.account_id, world.history_start - DAY) == account.opening_balance
        assert world.balance(account.account_id, TODAY) == account.opening_balance + sum(
            (txn.amount for txn in rows), Decimal(0)
        )
        as_of = TODAY - dt.timedelta(days=100)
        assert world.balance(account.account_id, as_of) == account.opening_balance + sum(
            (txn.amount for txn in rows if txn.booking_date <= as_of), Decimal(0)
        )
        first_day = rows[-40].booking_date if len(rows) > 40 else rows[0].booking_date
        running = world.balance(account.account_id, first_day - DAY)
        for txn in (t for t in rows if t.booking_date >= first_day):
            running += txn.amount
            assert world.running_balance(txn) == running
    with pytest.raises(ValueError):
        world.running_balance(next(t for a in world.accounts for t in world.pending(a.account_id)))


def test_accounts_and_ibans(world: World) -> None:
    assert 10 <= len(world.accounts) <= 18
    assert len(world.parties) == 6 and Counter(p.kind for p in world.parties) == {"person": 4, "company": 2}
    assert {a.currency for a in world.accounts} == {"GBP", "EUR", "RON", "INR", "BGN"}
    assert {a.account_type for a in world.accounts} == {"TRANSACTION", "SAVINGS", "CREDIT_CARD"}
    for account in world.accounts:
        assert account.account_id.startswith("acc-") and len(account.account_id) == 12
        assert world.account(account.account_id) is account
        if account.is_card:
            assert account.iban is None and len(account.number) == 4
            continue
        if account.currency == "INR":  # India has no IBANs: HDFC 14-digit, ICICI 12, SBI 11 account numbers
            assert (
                account.iban is None
                and len(account.number) == {"hdfc": 14, "icici": 12, "sbi": 11}[account.bank.provider_id]
            )
            continue
        assert is_valid_iban(account.iban)
        if account.iban.startswith("GB"):
            assert (
                account.iban[8:14] == account.sort_code.replace("-", "")
                and account.iban[14:] == account.number
            )
        if "fibank" in account.providers:  # BGkk + FINV + branch + kind + number
            assert len(account.iban) == 22 and account.iban[:2] == "BG" and account.iban[4:8] == "FINV"
    assert len(world.accounts_for("truelayer", cards=False)) == 8
    assert [a.key for a in world.accounts_for("truelayer", cards=True)] == ["alice-card"]
    for provider in ("berlin_group", "revolut", "gocardless", "hdfc", "icici", "sbi", "fibank"):
        assert world.accounts_for(provider), provider
    # The same real account is visible through two providers.
    assert any(len(a.providers) > 1 for a in world.accounts)
    assert world.accounts_for("no-such-connector") == []
    with pytest.raises(KeyError):
        world.account("acc-missing")
    with pytest.raises(KeyError):
        world.booked("acc-missing", TODAY, TODAY + DAY)


def test_answer_key_matches_booked_rows(world: World) -> None:
    start, end = TODAY - dt.timedelta(days=30), TODAY + DAY
    key = world.answer_key(start, end)
    rows = [txn for a in world.accounts for txn in world.booked(a.account_id, start, end)]
    assert set(key) == {txn.world_id for txn in rows}
    for txn in rows:
        entry = key[txn.world_id]
        assert (entry.true_category, entry.transfer_group, entry.account_id) == (
            txn.true_category,
            txn.transfer_group,
            txn.account_id,
        )
