"""How dbt nodes appear in Dagster: groups by layer, descriptions from the yml, and models on a
table several extract assets share depending on each of those assets."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtProject

LAYERS = ("staging", "intermediate", "marts")
# The layer-5 categoriser's output: a Python asset writes the table, dbt reads it as a source.
CATEGORY_PREDICTIONS = dg.AssetKey("category_predictions")
# dbt sources that a Python asset of this code location writes, by (source name, table): the source
# takes that asset's key, so the asset is upstream of the models reading the table.
SOURCES_WRITTEN_BY_ASSETS = {("ops", "category_predictions"): CATEGORY_PREDICTIONS}


class BankflowDbtTranslator(DagsterDbtTranslator):
    """`shared_sources` maps a dbt source's key to the extract assets that each land part of that
    table (the REST banks in raw.rest_*): no asset materialises the table's own key, so models
    depend on those instead, which puts them in the lineage and before dbt in every run.
    `per_file_sources`: the raw assets partitioned by statement file, not by day."""

    def __init__(
        self,
        shared_sources: Mapping[dg.AssetKey, Sequence[dg.AssetKey]] | None = None,
        per_file_sources: Collection[dg.AssetKey] = (),
    ) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))
        self._shared_sources = dict(shared_sources or {})
        self._per_file_sources = frozenset(per_file_sources)

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        if not any(dep.asset_key in self._shared_sources for dep in spec.deps):
            return spec
        deps = [
            dg.AssetDep(key, partition_mapping=dep.partition_mapping)
            for dep in spec.deps
            for key in self._shared_sources.get(dep.asset_key, [dep.asset_key])
        ]
        return spec.replace_attributes(deps=deps)

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        # Models are known by their name alone (fct_transactions); sources carry their raw
        # asset key in meta.dagster.asset_key, which the default handles.
        if dbt_resource_props.get("resource_type") == "model":
            return dg.AssetKey(dbt_resource_props["name"])
        if dbt_resource_props.get("resource_type") == "source":
            written = (dbt_resource_props.get("source_name"), dbt_resource_props.get("name"))
            if written in SOURCES_WRITTEN_BY_ASSETS:
                return SOURCES_WRITTEN_BY_ASSETS[written]
        return super().get_asset_key(dbt_resource_props)

    def get_partition_mapping(
        self, dbt_resource_props: Mapping[str, Any], dbt_parent_resource_props: Mapping[str, Any]
    ) -> dg.PartitionMapping | None:
        # A day of a model reads the entries of every file booked on it, whichever file they came
        # in: each day depends on all files. (The default, identity, cannot map files to days, and
        # the automation sensor and backfills refuse such a graph.)
        if (
            dbt_parent_resource_props.get("resource_type") == "source"
            and self.get_asset_key(dbt_parent_resource_props) in self._per_file_sources
        ):
            return dg.AllPartitionMapping()
        return None

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        # fqn is [project, layer, ...]: the layer folder is the group.
        fqn = dbt_resource_props.get("fqn", [])
        if dbt_resource_props.get("resource_type") == "model" and len(fqn) > 1 and fqn[1] in LAYERS:
            return fqn[1]
        if dbt_resource_props.get("resource_type") == "seed":
            # Their own group, so a job of the dbt layers can take the reference data with it.
            return "seeds"
        return super().get_group_name(dbt_resource_props)

    def get_automation_condition(
        self, dbt_resource_props: Mapping[str, Any]
    ) -> dg.AutomationCondition | None:
        # The models follow their sources: when a schedule refreshes a source's day, the models on
        # it (today's partition of the incremental ones) are built once nothing upstream is still
        # running. Runs of the daily pipeline build them in the same run and leave nothing to do.
        return dg.AutomationCondition.eager()
