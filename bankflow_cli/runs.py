"""The runs the CLI starts (`bankflow sync`, `bankflow backfill`, the demo's backfill): the daily
pipeline over a range of days, for some sources or all, as one run on the persistent instance.

One run over the whole range is the single-run backfill: each source fetches its window once and
dbt builds once, not once per day. With sources named, the run is their extracts and everything
downstream of them (and the other inputs of those models, built from the raw rows the other
sources already have: their extracts do not run).
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime

import dagster as dg
from rich.console import Console

from bankflow_cli.runtime import ensure_secret_key, prepare_runtime
from pipelines.partitions import PARTITIONS_START
from resources.settings import load_settings

STEP_EVENTS = {
    dg.DagsterEventType.STEP_SUCCESS,
    dg.DagsterEventType.STEP_FAILURE,
    dg.DagsterEventType.STEP_SKIPPED,
}
POLL_SECONDS = 0.5


class RunRequestError(ValueError):
    """Days or sources a run cannot be started for; the message is the one line the CLI prints."""


def check_days(first: date, last: date, today: date) -> None:
    if first > last:
        raise RunRequestError(f"--from {first} is after --to {last}")
    if first < date.fromisoformat(PARTITIONS_START):
        raise RunRequestError(f"--from {first} is before the first partition, {PARTITIONS_START}")
    if last > today:
        raise RunRequestError(f"--to {last} is after today ({today} UTC)")


def selected_assets(
    defs: dg.Definitions, extracts: Mapping[str, dg.AssetsDefinition], sources: Iterable[str]
) -> list[dg.AssetKey] | None:
    """The sources' extracts, everything downstream of them and the other inputs of that, without
    the other sources' extracts; None (everything) for no sources."""
    sources = list(sources)
    if not sources:
        return None
    unknown = sorted(set(sources) - extracts.keys())
    if unknown:
        raise RunRequestError(
            f"not a configured source: {', '.join(unknown)} (configured: {', '.join(sorted(extracts))})"
        )
    chosen = dg.AssetSelection.assets(*[extracts[s] for s in sources])
    others = dg.AssetSelection.assets(*[asset for name, asset in extracts.items() if name not in sources])
    # With the models' other inputs (the other sources' staging, built from the raw rows they
    # have): on a warehouse where those were never built, the shared models would fail without them.
    selection = chosen.downstream().upstream() - others
    # Statement files have their own per-file job; the daily pipeline never runs them.
    job = defs.resolve_job_def("daily_pipeline")
    return sorted(selection.resolve(defs.resolve_asset_graph()) & job.asset_layer.executable_asset_keys)


def planned_steps(defs: dg.Definitions, assets: list[dg.AssetKey] | None) -> int:
    """How many steps a run of the daily pipeline over `assets` (None: all) has: the progress bar's
    total. Each op of the (subset) job is one step, whatever the number of days."""
    job = defs.resolve_job_def("daily_pipeline")
    if assets is not None:
        job = job.get_subset(asset_selection=set(assets))
    return len(job.graph.node_dict)


def run_days(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    first: date,
    last: date,
    *,
    assets: list[dg.AssetKey] | None = None,
    trigger: str,
    on_step: Callable[[str, str], None] | None = None,
    run_config: Mapping | None = None,
) -> dg.ExecuteInProcessResult:
    """Run the daily pipeline over first..last as one run; `on_step(step, outcome)` hears of each
    step as it ends (read back from the instance's event log while the run goes on)."""
    job = defs.resolve_job_def("daily_pipeline")
    run_id = str(uuid.uuid4())
    done = threading.Event()
    watcher = threading.Thread(
        target=_watch_steps, args=(instance, run_id, done, on_step), daemon=True, name="run-progress"
    )
    if on_step is not None:
        watcher.start()
    try:
        return job.execute_in_process(
            instance=instance,
            run_id=run_id,
            run_config=run_config,
            asset_selection=assets,
            tags={
                "dagster/asset_partition_range_start": first.isoformat(),
                "dagster/asset_partition_range_end": last.isoformat(),
                "bankflow/trigger": trigger,
            },
            raise_on_error=False,
        )
    finally:
        done.set()
        if watcher.is_alive():
            watcher.join()


def _watch_steps(
    instance: dg.DagsterInstance, run_id: str, done: threading.Event, on_step: Callable[[str, str], None]
) -> None:
    seen = 0
    while True:
        finished = done.is_set()
        events = [
            record
            for record in instance.all_logs(run_id, of_type=STEP_EVENTS)
            if record.dagster_event is not None
        ]
        for record in events[seen:]:
            on_step(record.dagster_event.step_key or "", record.dagster_event.event_type_value)
        seen = len(events)
        if finished:
            return
        done.wait(POLL_SECONDS)


def run_from_cli(console: Console, first: date, last: date, sources: list[str], trigger: str) -> int:
    """`bankflow sync` and `backfill`: check the request, run it with a progress line, print the
    outcome; the exit code (0 done, 1 failed, 2 a request that cannot run)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    try:
        check_days(first, last, datetime.now(UTC).date())
    except RunRequestError as error:
        console.print(f"[red]{error}[/]")
        return 2
    settings = load_settings()
    prepare_runtime(settings)
    ensure_secret_key(settings)
    from pipelines.definitions import configured_extracts, defs
    from pipelines.resources import resources_from_env

    try:
        assets = selected_assets(defs, configured_extracts(resources_from_env(), os.environ), sources)
    except RunRequestError as error:
        console.print(f"[red]{error}[/]")
        return 2
    failed: list[str] = []
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    columns += (TimeElapsedColumn(),)
    total = planned_steps(defs, assets)
    with Progress(*columns, console=console) as progress, dg.DagsterInstance.get() as instance:
        task = progress.add_task(f"{trigger} {first} .. {last}: starting", total=total)
        steps = 0

        def on_step(step: str, outcome: str) -> None:
            nonlocal steps
            steps += 1
            if outcome == "STEP_FAILURE":
                failed.append(step)
            progress.update(task, completed=steps, description=f"{trigger} {first} .. {last}: last {step}")

        result = run_days(defs, instance, first, last, assets=assets, trigger=trigger, on_step=on_step)
    failing_checks = [
        f"{e.asset_key.to_user_string()}:{e.check_name}"
        for e in result.get_asset_check_evaluations()
        if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR
    ]
    if result.success and not failing_checks:
        console.print(f"[green]Done[/]: run {result.run_id} ({steps} steps). `bankflow ui` shows it.")
        return 0
    if failed:
        console.print(
            f"[red]Failed steps[/]: {', '.join(failed)} (run {result.run_id}; its log is in the UI)"
        )
    if failing_checks:
        console.print(f"[red]Failing checks[/]: {', '.join(failing_checks)}")
    return 1
