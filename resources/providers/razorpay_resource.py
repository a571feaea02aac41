"""Razorpay as a Dagster resource: the merchant's API keys and settings from the environment."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from resources.http import RetryPolicy
from resources.providers.razorpay import MAX_COUNT, RazorpayClient, RazorpayConfig


class RazorpayResource(dg.ConfigurableResource):
    """Razorpay (live, test mode, or bankflow's simulator: only the URL and keys differ).

    `base_url` is the API root including `/v1`. Test-mode keys (rzp_test_…) read test-mode data.
    """

    base_url: str = "https://api.razorpay.com/v1"
    key_id: str
    key_secret: str = Field(repr=False)
    # Names this merchant account in raw.account_ref; change it only together with a full reload.
    merchant_ref: str = "razorpay"
    max_attempts: int = 5
    backoff_initial_seconds: float = 0.5
    retry_after_max_seconds: float = 120.0
    page_size: int = MAX_COUNT
    timeout_seconds: float = 30.0

    def config(self) -> RazorpayConfig:
        return RazorpayConfig(
            base_url=self.base_url,
            key_id=self.key_id,
            key_secret=self.key_secret,
            merchant_ref=self.merchant_ref,
        )

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.max_attempts,
            backoff_initial=self.backoff_initial_seconds,
            retry_after_max=self.retry_after_max_seconds,
        )

    def open_client(self) -> RazorpayClient:
        return RazorpayClient(
            self.config(),
            retry=self.retry_policy(),
            page_size=self.page_size,
            timeout=self.timeout_seconds,
        )
