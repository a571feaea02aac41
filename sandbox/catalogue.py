"""What the world's customers spend on and earn from: merchants, payees and per-customer habits.

Amounts are in minor units (pence / cents) so that everything downstream stays in Decimal.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Merchant:
    """A card merchant: how it appears on a statement, its MCC (ISO 18245) and our category."""

    name: str
    statement_name: str
    mcc: str
    true_category: str
    low: int  # minor units
    mode: int
    high: int
    weight: float


GBP_MERCHANTS: tuple[Merchant, ...] = (
    Merchant("Tesco", "TESCO STORES", "5411", "groceries", 250, 1800, 9500, 9),
    Merchant("Sainsbury's", "SAINSBURYS S/MKTS", "5411", "groceries", 300, 2200, 11000, 7),
    Merchant("Lidl", "LIDL GB", "5411", "groceries", 200, 1500, 6500, 5),
    Merchant("Pret A Manger", "PRET A MANGER", "5814", "eating_out", 295, 650, 1600, 8),
    Merchant("Costa Coffee", "COSTA COFFEE", "5814", "eating_out", 240, 380, 950, 7),
    Merchant("Dishoom", "DISHOOM", "5812", "eating_out", 2200, 4500, 9500, 1.5),
    Merchant("Uber", "UBER *TRIP", "4121", "transport", 650, 1400, 4200, 3),
    Merchant("TfL", "TFL TRAVEL CH", "4111", "transport", 175, 540, 890, 9),
    Merchant("Shell", "SHELL", "5541", "transport", 2500, 5500, 9000, 1.5),
    Merchant("Amazon", "AMAZON.CO.UK*", "5942", "shopping", 599, 1899, 12000, 4),
    Merchant("Argos", "ARGOS LTD", "5999", "shopping", 500, 2500, 15000, 1),
    Merchant("Boots", "BOOTS", "5912", "health", 199, 899, 4500, 3),
    Merchant("Vue Cinemas", "VUE BSL LTD", "7832", "entertainment", 899, 1450, 3200, 1),
)

EUR_MERCHANTS: tuple[Merchant, ...] = (
    Merchant("Carrefour", "CARREFOUR CITY", "5411", "groceries", 250, 1900, 8500, 7),
    Merchant("Monoprix", "MONOPRIX", "5411", "groceries", 300, 2100, 9000, 5),
    Merchant("Paul", "PAUL BOULANGERIE", "5814", "eating_out", 180, 650, 1500, 6),
    Merchant("RATP", "RATP", "4111", "transport", 215, 215, 1690, 6),
    Merchant("Uber", "UBER *TRIP", "4121", "transport", 700, 1500, 4000, 2),
    Merchant("Fnac", "FNAC", "5942", "shopping", 900, 2500, 14000, 1.5),
)

BUSINESS_MERCHANTS: tuple[Merchant, ...] = (
    Merchant("Amazon", "AMAZON BUSINESS EU", "5942", "shopping", 1299, 4500, 35000, 4),
    Merchant("Shell", "SHELL", "5541", "transport", 3000, 6500, 11000, 2),
    Merchant("Pret A Manger", "PRET A MANGER", "5814", "eating_out", 450, 1500, 6500, 2),
    Merchant("Uber", "UBER *TRIP", "4121", "transport", 700, 1800, 5500, 2),
)


RON_MERCHANTS: tuple[Merchant, ...] = (
    Merchant("Kaufland", "KAUFLAND ROMANIA", "5411", "groceries", 1500, 9000, 45000, 8),
    Merchant("Mega Image", "MEGA IMAGE", "5411", "groceries", 800, 4500, 25000, 7),
    Merchant("Lidl", "LIDL DISCOUNT SRL", "5411", "groceries", 1000, 6000, 30000, 5),
    Merchant("Glovo", "GLOVO*RO", "5814", "eating_out", 3500, 6500, 15000, 4),
    Merchant("Bolt", "BOLT.EU/O/2", "4121", "transport", 1200, 2500, 7500, 5),
    Merchant("OMV Petrom", "PETROM", "5541", "transport", 15000, 30000, 45000, 1.5),
    Merchant("eMAG", "EMAG.RO", "5942", "shopping", 4000, 15000, 120000, 2),
    Merchant("Catena", "FARMACIA CATENA", "5912", "health", 1500, 5000, 20000, 2),
)

SAAS_MERCHANTS: tuple[Merchant, ...] = (
    Merchant("Amazon Web Services", "AWS EMEA", "4816", "subscriptions", 5000, 40000, 180000, 2),
    Merchant("Google Workspace", "GOOGLE*WORKSPACE", "4816", "subscriptions", 1150, 6900, 13800, 1),
    Merchant("Slack", "SLACK T0123ABCD", "4816", "subscriptions", 675, 5400, 10800, 1),
    Merchant("Notion", "NOTION LABS", "4816", "subscriptions", 800, 1600, 8000, 1),
    Merchant("Eurostar", "EUROSTAR INTERNATIONAL", "4112", "transport", 5000, 15000, 40000, 0.5),
)


@dataclass(frozen=True)
class Subscription:
    """A card-paid subscription on a fixed day of the month."""

    day: int
    merchant: str
    statement_name: str
    mcc: str
    amount: int  # minor units


@dataclass(frozen=True)
class Bill:
    """A monthly direct debit (or standing order) to an outside payee."""

    day: int
    payee: str
    description: str
    low: int
    high: int
    true_category: str = "utilities"
    transaction_category: str = "DIRECT_DEBIT"


@dataclass(frozen=True)
class PersonProfile:
    """One person's habits; all money is in the current account's currency (GBP)."""

    party: str
    current: str
    savings: str | None
    salary: int
    rent: Bill
    bills: tuple[Bill, ...]
    subscriptions: tuple[Subscription, ...]
    card_per_day: float
    atm_per_day: float
    savings_transfer: tuple[int, int] | None  # monthly on the 26th, minor-unit range
    round_ups: bool  # Monzo-style daily round-ups of card spend into the savings account
    monthly_fee: int | None  # minor units, on the 28th
    eur_account: str | None = None


SALARY_DAY = 25
SAVINGS_TRANSFER_DAY = 26
FEE_DAY = 28
EUR_CONSULTING_DAY = 28

_NETFLIX = Subscription(9, "Netflix", "NETFLIX.COM", "4899", 1099)
_SPOTIFY = Subscription(17, "Spotify", "SPOTIFY P2A9C1D3", "4899", 1199)

PEOPLE: tuple[PersonProfile, ...] = (
    PersonProfile(
        party="alice",
        current="alice-current",
        savings="alice-savings",
        salary=325000,
        rent=Bill(1, "Hargreaves Lettings", "RENT FLAT 4B", 135000, 135000, "rent", "STANDING_ORDER"),
        bills=(
            Bill(5, "British Gas", "BRITISH GAS", 5500, 12000),
            Bill(12, "Thames Water", "THAMES WATER", 3100, 4400),
            Bill(15, "London Borough of Camden", "LB CAMDEN COUNCIL TAX", 15600, 15600),
            Bill(20, "EE Limited", "EE LIMITED", 2500, 2500),
        ),
        subscriptions=(_NETFLIX, _SPOTIFY),
        card_per_day=1.8,
        atm_per_day=0.04,
        savings_transfer=(15000, 30000),
        round_ups=True,
        monthly_fee=None,
    ),
    PersonProfile(
        party="bogdan",
        current="bogdan-current",
        savings="bogdan-savings",
        salary=290000,
        rent=Bill(1, "K Patel", "RENT 12 ALBERT ROAD", 110000, 110000, "rent", "STANDING_ORDER"),
        bills=(
            Bill(3, "Octopus Energy", "OCTOPUS ENERGY", 7000, 11000),
            Bill(8, "Virgin Media", "VIRGIN MEDIA", 4500, 4500),
            Bill(15, "London Borough of Hackney", "LB HACKNEY CTAX", 13800, 13800),
        ),
        subscriptions=(Subscription(4, "Spotify", "SPOTIFY P3B7E2F1", "4899", 1199),),
        card_per_day=1.5,
        atm_per_day=0.06,
        savings_transfer=(10000, 20000),
        round_ups=False,
        monthly_fee=500,
    ),
    PersonProfile(
        party="chloe",
        current="chloe-current",
        savings=None,
        salary=375000,
        rent=Bill(2, "Canal Wharf Estates", "RENT 7 CANAL WHARF", 160000, 160000, "rent", "STANDING_ORDER"),
        bills=(
            Bill(6, "British Gas", "BRITISH GAS", 6000, 13000),
            Bill(12, "Thames Water", "THAMES WATER", 3300, 4600),
            Bill(15, "Islington Council", "ISLINGTON COUNCIL TAX", 16900, 16900),
            Bill(22, "Vodafone", "VODAFONE LTD", 3000, 3000),
        ),
        subscriptions=(_NETFLIX,),
        card_per_day=2.0,
        atm_per_day=0.03,
        savings_transfer=None,
        round_ups=False,
        monthly_fee=None,
        eur_account="chloe-eur",
    ),
)


@dataclass(frozen=True)
class BusinessPartner:
    """A customer or supplier of the company, outside the world."""

    name: str
    statement_name: str
    country: str  # of its IBAN


GBP_CUSTOMERS: tuple[BusinessPartner, ...] = (
    BusinessPartner("Harbour Foods Ltd", "HARBOUR FOODS LTD", "GB"),
    BusinessPartner("Kestrel Logistics plc", "KESTREL LOGISTICS", "GB"),
    BusinessPartner("Brightwell Retail Ltd", "BRIGHTWELL RETAIL", "GB"),
    BusinessPartner("Oakmere Hotels Ltd", "OAKMERE HOTELS", "GB"),
    BusinessPartner("Pennine Outdoor Co", "PENNINE OUTDOOR CO", "GB"),
)
GBP_SUPPLIERS: tuple[BusinessPartner, ...] = (
    BusinessPartner("Apex Packaging Ltd", "APEX PACKAGING", "GB"),
    BusinessPartner("Midland Freight Services", "MIDLAND FREIGHT", "GB"),
    BusinessPartner("Clearview Accountancy LLP", "CLEARVIEW ACCOUNTANCY", "GB"),
    BusinessPartner("Sterling Office Supplies", "STERLING OFFICE SUP", "GB"),
)
EUR_CUSTOMERS: tuple[BusinessPartner, ...] = (
    BusinessPartner("Bauer Logistik GmbH", "BAUER LOGISTIK GMBH", "DE"),
    BusinessPartner("Van Dijk Handel B.V.", "VAN DIJK HANDEL BV", "NL"),
    BusinessPartner("Lefèvre Distribution SARL", "LEFEVRE DISTRIBUTION", "DE"),
)
EUR_SUPPLIERS: tuple[BusinessPartner, ...] = (
    BusinessPartner("Rhein Verpackung GmbH", "RHEIN VERPACKUNG", "DE"),
    BusinessPartner("Hollandse Transport B.V.", "HOLLANDSE TRANSPORT", "NL"),
)

COMPANY_GBP_BILLS: tuple[Bill, ...] = (
    Bill(1, "Dockside Properties Ltd", "RENT UNIT 7 DOCKSIDE", 240000, 240000, "rent", "STANDING_ORDER"),
    Bill(10, "Octopus Energy", "OCTOPUS ENERGY BUSINESS", 18000, 32000),
    Bill(14, "BT Business", "BT BUSINESS", 6500, 6500),
)


RON_BILLS: tuple[Bill, ...] = (
    Bill(10, "Enel Energie Muntenia", "ENEL ENERGIE MUNTENIA", 12000, 26000),
    Bill(14, "Digi Romania", "DIGI ROMANIA SA", 4500, 4500),
)


# Kaveri Handlooms' showroom (Chennai): what its ICICI and SBI accounts see. Amounts in paise.
INR_MERCHANTS: tuple[Merchant, ...] = (
    Merchant("Swiggy", "SWIGGY", "5814", "eating_out", 15000, 45000, 250000, 4),
    Merchant("Uber India", "UBER INDIA SYSTEMS", "4121", "transport", 12000, 35000, 150000, 3),
    Merchant("Indian Oil", "IOCL FUEL STATION", "5541", "transport", 100000, 300000, 600000, 2),
    Merchant("Amazon India", "AMAZON PAY INDIA", "5942", "shopping", 49900, 250000, 1500000, 3),
    Merchant("IndiGo", "INDIGO AIRLINES", "4511", "transport", 350000, 700000, 2000000, 0.6),
)
INR_UPI_PAYERS: tuple[str, ...] = (
    "ANANYA RAO",
    "K SUBRAMANIAN",
    "PRIYA NAIR",
    "MEENAKSHI SUNDARAM",
    "ARJUN MENON",
    "LAKSHMI VENKATESH",
    "DIVYA IYER",
)
INR_SUPPLIERS: tuple[BusinessPartner, ...] = (
    BusinessPartner("Arani Silk Weavers Co-op", "ARANI SILK WEAVERS", "IN"),
    BusinessPartner("Kanchi Zari Works", "KANCHI ZARI WORKS", "IN"),
    BusinessPartner("Blue Dart Express Ltd", "BLUE DART EXPRESS", "IN"),
)
INR_BILLS: tuple[Bill, ...] = (
    Bill(7, "TANGEDCO", "NACH/TANGEDCO/ELECTRICITY", 400000, 900000),
    Bill(11, "BSNL", "NACH/BSNL/BROADBAND", 117900, 117900),
)


# Desislava's life in Sofia, paid from her Fibank lev account. Amounts in stotinki.
BGN_MERCHANTS: tuple[Merchant, ...] = (
    Merchant("Kaufland", "KAUFLAND BULGARIA SOFIA", "5411", "groceries", 600, 3800, 19000, 8),
    Merchant("Billa", "BILLA BULGARIA", "5411", "groceries", 300, 2200, 9500, 7),
    Merchant("Fantastico", "FANTASTICO GROUP", "5411", "groceries", 400, 2600, 12000, 5),
    Merchant("Happy", "HAPPY BAR AND GRILL", "5812", "eating_out", 1800, 4200, 11000, 3),
    Merchant("Costa Coffee", "COSTA COFFEE BG", "5814", "eating_out", 350, 620, 1500, 5),
    Merchant("Sofia Urban Mobility", "CGM SOFIA TRANSPORT", "4111", "transport", 160, 320, 1200, 6),
    Merchant("Shell", "SHELL BULGARIA", "5541", "transport", 4000, 9000, 16000, 1.5),
    Merchant("eMAG", "EMAG.BG", "5942", "shopping", 2000, 6500, 45000, 2),
    Merchant("Sopharmacy", "SOPHARMACY", "5912", "health", 500, 1800, 7000, 2),
)
BGN_BILLS: tuple[Bill, ...] = (
    Bill(10, "Toplofikatsia Sofia", "TOPLOFIKATSIA SOFIA EAD", 4000, 16000),
    Bill(12, "Sofiyska Voda", "SOFIYSKA VODA AD", 1800, 3500),
    Bill(15, "Electrohold Sales", "ELECTROHOLD PRODAZHBI EAD", 5000, 12000),
    Bill(20, "Yettel Bulgaria", "YETTEL BULGARIA EAD", 2999, 2999),
)
