"""Benchmark: categorisation and internal-transfer detection against the sandbox world's answer key.

    python -m bench.accuracy [--days 40] [--seed 7] [--keep] [--json]

In a scratch database of its own (`bankflow_bench_accuracy`) on the warehouse server
(`BANKFLOW_DATABASE_URL`, else the embedded one): the sandbox banks for `--seed`, every provider
connected through its consent flow, and the daily pipeline over the last `--days` partitions in one
run (extract, dbt, the learned model, checks), as `make demo` runs it without the statement files.
Then it prints, against the world's answer key (`sandbox/answer_key.py`):

- categorisation accuracy on spend rows (target >= 95%), with precision and recall per category,
  over the days the run fetched (lookback included);
- internal transfers: pair-level precision and recall (target >= 99% each) over the partitions.

Figures, not assertions: it exits non-zero only when the run fails. tests/test_categorisation.py and
tests/test_transfers.py assert the targets on the same measures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bankflow_cli.demo import connect_sandbox_banks, use_sandbox
from pipelines.partitions import LOOKBACK_DAYS
from resources.vault import generate_secret_key
from resources.warehouse.database import resolve_database, scratch_database, with_database
from sandbox.answer_key import (
    MISSING,
    SPEND_ACCURACY_TARGET,
    TRANSFER_TARGET,
    accuracy,
    categorised_vs_true,
    precision_recall,
    score_transfers,
    spend_only,
)
from sandbox.server import Sandbox

DATABASE = "bankflow_bench_accuracy"


def run_pipeline(first: date, last: date) -> tuple[bool, list[str], float]:
    """The daily pipeline over first..last as one run (the environment names the banks and the
    warehouse); its success, failed checks and wall time. dbt's output goes to stderr."""
    # Imported here: the code location reads the environment set up above when it is built.
    from pipelines.definitions import build_definitions
    from pipelines.resources import resources_from_env

    job = build_definitions(resources_from_env()).resolve_job_def("daily_pipeline")
    started = time.monotonic()
    with contextlib.redirect_stdout(sys.stderr):
        result = job.execute_in_process(
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            tags={
                "dagster/asset_partition_range_start": first.isoformat(),
                "dagster/asset_partition_range_end": last.isoformat(),
            },
            raise_on_error=False,
        )
    failed = [
        f"{e.asset_key.to_user_string()}:{e.check_name}"
        for e in result.get_asset_check_evaluations()
        if not e.passed
    ]
    return result.success, failed, time.monotonic() - started


def measure(url: str, days: int, seed: int) -> dict[str, object]:
    today = datetime.now(UTC).date()
    first = today - timedelta(days=days - 1)
    os.environ.update({"BANKFLOW_DATABASE_URL": url, "BANKFLOW_SECRET_KEY": generate_secret_key()})
    with Sandbox(seed=seed) as sandbox:
        use_sandbox(sandbox)
        connect_sandbox_banks(url, os.environ["BANKFLOW_SECRET_KEY"])
        print(f"pipeline over {first} .. {today} ({days} partitions, seed {seed}) ...", file=sys.stderr)
        success, failed_checks, seconds = run_pipeline(first, today)
        if not success:
            raise RuntimeError("the pipeline run failed; its steps' errors are above")
        pairs = categorised_vs_true(
            url, sandbox.world, first - timedelta(days=LOOKBACK_DAYS), today + timedelta(days=1)
        )
        transfers = score_transfers(url, sandbox.world, first, today + timedelta(days=1))
    spend = spend_only(pairs)
    return {
        "window": [first.isoformat(), today.isoformat()],
        "seed": seed,
        "run_seconds": round(seconds, 1),
        "failed_checks": failed_checks,
        "spend_rows": len(spend),
        "spend_rows_missing_in_marts": sum(1 for _, got in spend if got == MISSING),
        "spend_accuracy": round(accuracy(spend), 4),
        "all_rows_accuracy": round(accuracy(pairs), 4),
        "per_category": precision_recall(spend),
        "confusions": Counter(f"{t} -> {p}" for t, p in spend if t != p).most_common(10),
        "transfers": {
            "expected_pairs": transfers.expected,
            "predicted_pairs": transfers.predicted,
            "correct_pairs": transfers.correct,
            "unjudged_pairs": transfers.unjudged,
            "precision": round(transfers.precision, 4),
            "recall": round(transfers.recall, 4),
        },
    }


def verdict(value: float, target: float) -> str:
    return "meets" if value >= target else "MISSES"


def print_report(report: dict) -> None:
    spend_accuracy = report["spend_accuracy"]
    print(
        f"window {report['window'][0]} .. {report['window'][1]}, seed {report['seed']}, "
        f"run {report['run_seconds']} s, failed checks: {report['failed_checks'] or 'none'}"
    )
    print(
        f"\ncategorisation, spend rows: {spend_accuracy:.2%} of {report['spend_rows']:,} "
        f"({verdict(spend_accuracy, SPEND_ACCURACY_TARGET)} the {SPEND_ACCURACY_TARGET:.0%} target; "
        f"{report['spend_rows_missing_in_marts']} not in the marts); every booked row: {report['all_rows_accuracy']:.2%}"
    )
    print(f"\n{'category':<16} {'rows':>6} {'predicted':>9} {'precision':>9} {'recall':>7}")
    for category, figures in report["per_category"].items():
        print(
            f"{category:<16} {figures['rows']:>6} {figures['predicted']:>9} "
            f"{figures['precision']:>9.2%} {figures['recall']:>7.2%}"
        )
    if report["confusions"]:
        print(
            "\nmost frequent confusions (true -> categorised): "
            + ", ".join(f"{c} x{n}" for c, n in report["confusions"])
        )
    t = report["transfers"]
    print(
        f"\ninternal transfers: {t['correct_pairs']} of {t['predicted_pairs']} predicted pairs right, "
        f"{t['expected_pairs']} expected ({t['unjudged_pairs']} with a leg outside the window)\n"
        f"  precision {t['precision']:.2%} ({verdict(t['precision'], TRANSFER_TARGET)} the {TRANSFER_TARGET:.0%} target), "
        f"recall {t['recall']:.2%} ({verdict(t['recall'], TRANSFER_TARGET)} it)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=40, help="daily partitions ending today")
    parser.add_argument("--seed", type=int, default=7, help="the sandbox world's seed")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    home = Path(os.environ.setdefault("BANKFLOW_HOME", ".bankflow")).resolve()
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    target = resolve_database(os.environ.get("BANKFLOW_DATABASE_URL"), home)
    with scratch_database(with_database(target.url, "postgres"), DATABASE, keep=args.keep) as url:
        report = measure(url, args.days, args.seed)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
