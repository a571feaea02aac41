"""Which dbt nodes each dbt step of a pipeline run builds.

The categoriser's model is a Python asset in the middle of the dbt graph (it reads the rule-
categorised rows and dbt reads its predictions back), and the incremental models are daily-
partitioned while the rest are not, so the models cannot be one Dagster asset. Left to itself,
Dagster splits assets that mix both sides of the categoriser into a step per side and level (ten
dbt steps a run, each paying dbt's start-up of several seconds); cut along the lineage here, each
phase is one step (seven). The incremental staging models are a phase of their own because their
GX suites are blocking: Dagster holds back a blocking check's asset's children only when they are
in another step.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

BUILT = ("model", "seed", "snapshot")
PREDICTIONS_SOURCE = ("ops", "category_predictions")


@dataclass(frozen=True)
class Phases:
    """dbt selections (fully qualified names, space-separated) in the order a run builds them."""

    reference: str  # seeds, staging views, dimensions: nothing built on an incremental model
    incremental_staging: str  # each source's booked transactions
    incremental_intermediate: str  # the union, rule matches, transfer pairs
    rule_categorised: str  # views over the rule matches that the categoriser reads
    categorised: str  # the predictions read back and the categorised rows
    incremental_facts: str  # fct_transactions and the totals kept from its change log
    marts: str  # everything built on those: balances, spend, budgets, cash flow, recon


def dbt_phases(manifest: Mapping[str, Any]) -> Phases:
    nodes = {uid: node for uid, node in manifest["nodes"].items() if node["resource_type"] in BUILT}
    children: dict[str, set[str]] = {}
    for uid, node in nodes.items():
        for parent in node.get("depends_on", {}).get("nodes", []):
            children.setdefault(parent, set()).add(uid)

    def downstream(starts: Iterable[str]) -> set[str]:
        seen: set[str] = set()
        stack = list(starts)
        while stack:
            for child in children.get(stack.pop(), ()):
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
        return seen & nodes.keys()

    incremental = {uid for uid, node in nodes.items() if node["config"].get("materialized") == "incremental"}
    staging = {uid for uid, node in nodes.items() if node["fqn"][1:2] == ["staging"]}
    on_incremental = incremental | downstream(incremental)
    sources = [
        uid
        for uid, source in manifest["sources"].items()
        if (source["source_name"], source["name"]) == PREDICTIONS_SOURCE
    ]
    predicted = downstream(sources)
    facts = incremental & predicted
    after_facts = downstream(facts)

    def selection(uids: set[str]) -> str:
        if not uids:
            raise ValueError("a dbt phase selects no node: the lineage around the categoriser changed")
        return " ".join(sorted(".".join(nodes[uid]["fqn"]) for uid in uids))

    return Phases(
        reference=selection(nodes.keys() - on_incremental - predicted),
        incremental_staging=selection((incremental & staging) - predicted),
        incremental_intermediate=selection(incremental - staging - predicted),
        rule_categorised=selection(on_incremental - incremental - predicted),
        categorised=selection(predicted - incremental - after_facts),
        incremental_facts=selection(facts),
        marts=selection((predicted - incremental) & after_facts),
    )
