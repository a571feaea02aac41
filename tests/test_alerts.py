"""The run-failure alert: a real failed run of an extract, posted to a real webhook server, names
the source, the error and the fix; an unreachable webhook is reported without its URL."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pipelines.alerts.sensors import run_failure_alert
from resources.alerts import AlertsResource
from sandbox.server import Sandbox, serve

DAY = datetime.now(UTC).date() - timedelta(days=20)


@pytest.fixture(scope="module")
def webhook() -> Iterator[tuple[str, list[dict]]]:
    received: list[dict] = []

    async def hook(request: Request) -> Response:
        received.append(await request.json())
        return Response(status_code=200)

    with serve(Starlette(routes=[Route("/hook/T000/secret-part", hook, methods=["POST"])])) as url:
        yield f"{url}/hook/T000/secret-part", received


def failed_truelayer_run(
    definitions: dg.Definitions, sandbox: Sandbox, fault: str, instance: dg.DagsterInstance
):
    job = definitions.resolve_job_def("daily_pipeline")
    sandbox.state.set_fault(fault)
    result = job.execute_in_process(
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": DAY.isoformat(),
            "dagster/asset_partition_range_end": DAY.isoformat(),
        },
        asset_selection=[
            k for k in job.asset_layer.executable_asset_keys if k.path[-1].startswith("raw_truelayer")
        ],
        raise_on_error=False,
    )
    assert not result.success
    return result


def alert_for(
    result: dg.ExecuteInProcessResult, instance: dg.DagsterInstance, alerts: AlertsResource
) -> None:
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert",
        dagster_event=result.get_run_failure_event(),
        dagster_instance=instance,
        dagster_run=result.dagster_run,
    ).for_run_failure()
    run_failure_alert(context, alerts=alerts)


def test_a_failed_extract_is_posted_with_its_source_and_fix(
    definitions: dg.Definitions, sandbox: Sandbox, webhook: tuple[str, list[dict]]
) -> None:
    url, received = webhook
    received.clear()
    with dg.DagsterInstance.ephemeral() as instance:
        result = failed_truelayer_run(definitions, sandbox, "unauthorized", instance)
        alert_for(result, instance, AlertsResource(webhook_url=url, ui_url="http://127.0.0.1:3000/"))

    [posted] = received
    text = posted["text"]
    run_id = result.dagster_run.run_id
    assert text.startswith(f"bankflow: run {run_id[:8]} of daily_pipeline failed")
    assert f"http://127.0.0.1:3000/runs/{run_id}" in text
    assert "- source truelayer:" in text
    assert text.rstrip().endswith("-> fix: Reconnect with: bankflow connect truelayer")


def test_a_bank_outage_names_the_retry_and_a_dead_webhook_is_reported_without_its_url(
    definitions: dg.Definitions, sandbox: Sandbox, webhook: tuple[str, list[dict]], capfd
) -> None:
    url, received = webhook
    received.clear()
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/hook/T000/secret-part"
    with dg.DagsterInstance.ephemeral() as instance:
        result = failed_truelayer_run(definitions, sandbox, "server_error", instance)
        alert_for(result, instance, AlertsResource(webhook_url=url))
        alert_for(result, instance, AlertsResource(webhook_url=dead))

    [posted] = received
    assert "- source truelayer: TransientProviderError:" in posted["text"]
    assert "HTTP 500" in posted["text"]
    assert "the next scheduled run retries" in posted["text"]
    logged = capfd.readouterr().err
    assert "run failure alert not delivered: the webhook could not be reached (ConnectError)" in logged
    assert "secret-part" not in logged
