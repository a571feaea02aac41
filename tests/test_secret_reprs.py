"""Secrets never show in the repr of a config, a resource or a pending consent (reprs end up in
logs and tracebacks)."""

from __future__ import annotations

from resources.providers.berlin_group import BerlinGroupConfig
from resources.providers.berlin_group_resource import BerlinGroupResource
from resources.providers.fibank import FibankConfig
from resources.providers.fibank_resource import FibankResource
from resources.providers.gocardless import GoCardlessConfig
from resources.providers.gocardless_resource import GoCardlessResource
from resources.providers.razorpay import RazorpayConfig
from resources.providers.razorpay_resource import RazorpayResource
from resources.providers.revolut import RevolutConfig
from resources.providers.revolut_resource import RevolutResource
from resources.providers.truelayer import TrueLayerConfig
from resources.providers.truelayer_resource import TrueLayerResource
from resources.warehouse.resource import WarehouseResource

SECRET = "s3cr3t-value-that-must-not-leak"


def test_no_secret_in_reprs() -> None:
    objects = [
        TrueLayerConfig("https://a", "https://b", "id", SECRET),
        TrueLayerResource(client_id="id", client_secret=SECRET),
        BerlinGroupConfig(base_url="https://a", token_url="https://b", client_id="id", client_secret=SECRET),
        BerlinGroupResource(
            base_url="https://a", token_url="https://b", client_id="id", client_secret=SECRET
        ),
        RevolutConfig("https://a", "https://b", "id", SECRET),
        RevolutResource(api_url="https://a", consent_url="https://b", client_id="id", private_key_pem=SECRET),
        GoCardlessConfig("https://a", "id", SECRET),
        GoCardlessResource(base_url="https://a", secret_id="id", secret_key=SECRET),
        RazorpayConfig("https://a", "rzp_test_id", SECRET),
        RazorpayResource(base_url="https://a", key_id="rzp_test_id", key_secret=SECRET),
        FibankConfig("https://a", SECRET, SECRET),
        FibankResource(base_url="https://a", username=SECRET, password=SECRET),
        WarehouseResource(database_url=f"postgresql://u:{SECRET}@h/db", secret_key=SECRET),
    ]
    for obj in objects:
        assert SECRET not in repr(obj), type(obj).__name__
