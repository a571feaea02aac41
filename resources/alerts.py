"""Run-failure alerts: one message a person can act on (which source, what broke, what to do),
posted to a webhook (Slack-compatible `{"text": ...}`) and always logged.

The webhook URL is a secret (whoever has it can post to the channel): it is never logged or
put into an error.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg
import httpx

WEBHOOK_TIMEOUT_SECONDS = 10.0
# Error classes (resources/errors.py) -> what the person on call does.
FIX_BY_ERROR = {
    "TransientProviderError": "the bank was unavailable or limited us; the next scheduled run retries,"
    " or re-run the partition once the bank answers",
    "ProviderResponseError": "the bank answered with something bankflow cannot read; the run's log has"
    " the status and the field, report it if it persists",
}
DEFAULT_FIX = "open the run in the Dagster UI for the failing step's log"


@dataclass(frozen=True)
class StepFailure:
    step: str
    error_class: str
    message: str
    # The fix the error names itself (AuthorizationRequired: `bankflow connect <provider>`).
    fix: str | None = None

    @property
    def source(self) -> str | None:
        """The extract steps are `raw_<source>` (`raw_rest_<bank>`); other steps are models and checks."""
        return self.step.removeprefix("raw_") if self.step.startswith("raw_") else None


def failure_message(job: str, run_id: str, failures: list[StepFailure], run_url: str | None) -> str:
    where = f" ({run_url})" if run_url else ""
    lines = [f"bankflow: run {run_id[:8]} of {job} failed{where}"]
    if not failures:
        lines.append("- the run failed outside any step (see the run's log); fix: " + DEFAULT_FIX)
    for failure in failures:
        subject = f"source {failure.source}" if failure.source else f"step {failure.step}"
        first_line = (
            failure.message.strip().splitlines()[0] if failure.message.strip() else failure.error_class
        )
        if failure.fix and first_line.endswith(failure.fix):
            first_line = first_line.removesuffix(failure.fix).rstrip(" .;")
        fix = failure.fix or FIX_BY_ERROR.get(failure.error_class, DEFAULT_FIX)
        lines.append(f"- {subject}: {failure.error_class}: {first_line} -> fix: {fix}")
    return "\n".join(lines)


def post_alert(webhook_url: str, text: str) -> str | None:
    """Post the message; None when the webhook took it, else why not (without the URL)."""
    try:
        response = httpx.post(webhook_url, json={"text": text}, timeout=WEBHOOK_TIMEOUT_SECONDS)
    except httpx.HTTPError as error:
        return f"the webhook could not be reached ({type(error).__name__})"
    if response.is_error:
        return f"the webhook answered HTTP {response.status_code}"
    return None


class AlertsResource(dg.ConfigurableResource):
    """Where run-failure alerts go: a webhook (optional; the message is logged either way), and
    the Dagster UI's address for a link to the run."""

    webhook_url: str | None = None
    ui_url: str | None = None

    def run_url(self, run_id: str) -> str | None:
        return f"{self.ui_url.rstrip('/')}/runs/{run_id}" if self.ui_url else None

    def send(self, text: str) -> str | None:
        """None when delivered (or there is no webhook to deliver to), else why it was not."""
        return post_alert(self.webhook_url, text) if self.webhook_url else None
