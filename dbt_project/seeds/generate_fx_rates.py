"""Write seeds/fx_rates_daily.csv: a deterministic, plausible series of euro reference rates.

The machine is offline, so the sandbox cannot use the real ECB history. This script writes rates
in the spirit of the ECB file (eurofxref-hist.csv): units of a currency per 1 EUR, published on
TARGET business days only (no weekends, no TARGET holidays), four decimals (two for HUF), the lev
fixed at its peg. Each currency is a mean-reverting random walk around a plausible level, seeded
by its code, so a rerun writes the same file. The GBP level sits in the middle of the sandbox
world's own exchange rates (1.14-1.19 EUR per GBP), which transfer matching compares against.

A production deployment replaces the CSV with the real ECB history (reshaped to one row per day
and currency) or loads it as an asset; nothing downstream depends on how it was made.

Run: ``.venv/bin/python dbt_project/seeds/generate_fx_rates.py`` (writes next to this file).
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import random
from decimal import Decimal
from pathlib import Path

FIRST_DAY = dt.date(2025, 1, 2)
# Covers the sandbox world (400 days back from 2026-12-05); later days take the last rate.
LAST_DAY = dt.date(2026, 12, 4)
OUTPUT = Path(__file__).resolve().parent / "fx_rates_daily.csv"

# currency -> (level in units per EUR, daily volatility of the log rate, decimals published)
LEVELS: dict[str, tuple[str, float, int]] = {
    "GBP": ("0.8585", 0.0008, 4),
    "USD": ("1.0850", 0.0040, 4),
    "RON": ("4.9750", 0.0008, 4),
    "BGN": ("1.95583", 0.0, 5),  # pegged: 1 EUR = 1.95583 BGN, never moves
    "INR": ("92.5000", 0.0040, 4),
    "CHF": ("0.9400", 0.0030, 4),
    "PLN": ("4.2700", 0.0030, 4),
    "HUF": ("395.00", 0.0040, 2),
    "SEK": ("11.2000", 0.0040, 4),
    "NOK": ("11.6000", 0.0045, 4),
    "DKK": ("7.4600", 0.0002, 4),  # ERM II: held close to its central rate
    "CZK": ("25.1000", 0.0025, 4),
    "CAD": ("1.5000", 0.0040, 4),
}
# How strongly a rate is pulled back to its level each day: keeps the series in a plausible band.
MEAN_REVERSION = 0.05


def easter_sunday(year: int) -> dt.date:
    """Gregorian Easter (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    leap = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * leap) // 451
    month = (h + leap - 7 * m + 114) // 31
    day = (h + leap - 7 * m + 114) % 31 + 1
    return dt.date(year, month, day)


def is_target_business_day(day: dt.date) -> bool:
    """Does the ECB publish reference rates on this day (TARGET2 calendar)?"""
    if day.weekday() >= 5:
        return False
    easter = easter_sunday(day.year)
    holidays = {
        dt.date(day.year, 1, 1),
        easter - dt.timedelta(days=2),  # Good Friday
        easter + dt.timedelta(days=1),  # Easter Monday
        dt.date(day.year, 5, 1),
        dt.date(day.year, 12, 25),
        dt.date(day.year, 12, 26),
    }
    return day not in holidays


def business_days(first: dt.date, last: dt.date) -> list[dt.date]:
    """TARGET business days in [first, last]."""
    days, day = [], first
    while day <= last:
        if is_target_business_day(day):
            days.append(day)
        day += dt.timedelta(days=1)
    return days


def rate_series(currency: str, days: list[dt.date]) -> list[Decimal]:
    """One published rate per day: a mean-reverting walk of the log rate around the currency's level."""
    level_text, volatility, decimals = LEVELS[currency]
    level = math.log(float(level_text))
    rng = random.Random(f"bankflow-fx:{currency}")
    quantum = Decimal(1).scaleb(-decimals)
    log_rate, rates = level, []
    for _ in days:
        log_rate += MEAN_REVERSION * (level - log_rate) + rng.gauss(0.0, volatility)
        # The rate is published as text with fixed decimals; Decimal keeps exactly that text.
        rates.append(Decimal(repr(math.exp(log_rate))).quantize(quantum))
    return rates


def write_rates(path: Path = OUTPUT) -> int:
    """Write the seed CSV (rate_date, currency, rate_per_eur); returns the number of rows."""
    days = business_days(FIRST_DAY, LAST_DAY)
    series = {currency: rate_series(currency, days) for currency in LEVELS}
    count = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["rate_date", "currency", "rate_per_eur"])
        for index, day in enumerate(days):
            for currency in LEVELS:
                writer.writerow([day.isoformat(), currency, str(series[currency][index])])
                count += 1
    return count


if __name__ == "__main__":
    print(f"{write_rates()} rates written to {OUTPUT}")
