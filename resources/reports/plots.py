"""The charts as PNG images, drawn with matplotlib's object API on its Agg canvas (no screen, no
pyplot state). Values become floats here and only here, to be drawn."""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resources.reports.chart_data import AGE_BUCKETS, ChartData

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 100
WIDTH_INCHES = 10.0
POSITIVE, NEGATIVE, NET = "#2e7d32", "#c62828", "#212121"
# Budget bars: the axis goes this far (% of the cap) at most.
MAX_CAP_SHARE = 250.0


def use_font_cache(folder: Path) -> None:
    """Keep matplotlib's config and font cache in `folder` unless MPLCONFIGDIR already says where:
    a home directory may not be writable (containers), and matplotlib would then rebuild the font
    cache in a new temporary folder on every start. Takes effect before matplotlib is imported."""
    if "MPLCONFIGDIR" not in os.environ:
        folder.mkdir(parents=True, exist_ok=True)
        os.environ["MPLCONFIGDIR"] = str(folder)


def plot_png(chart: ChartData) -> bytes:
    """The chart drawn as a PNG image."""
    figure = DRAWERS[chart.key](chart) if chart.plotted.rows else _empty(chart)
    buffer = io.BytesIO()
    # No creation time or version in the file: the same numbers give the same bytes.
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _figure(height: float, width: float = WIDTH_INCHES) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _grid(figure: Figure, panels: int, columns: int, *, sharex: bool = False) -> list[Axes]:
    columns = max(1, min(columns, panels))
    rows = math.ceil(panels / columns)
    axes = list(figure.subplots(rows, columns, squeeze=False, sharex=sharex).ravel())
    for unused in axes[panels:]:
        unused.set_visible(False)
    return axes[:panels]


def _empty(chart: ChartData) -> Figure:
    figure = _figure(1.6)
    figure.suptitle(chart.title)
    figure.text(0.5, 0.4, f"No rows in {', '.join(chart.marts)} yet.", ha="center", va="center")
    return figure


def _float(value: Decimal | int | None) -> float:
    return 0.0 if value is None else float(value)


def _compact(value: float, _position: object = None) -> str:
    for threshold, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= threshold:
            return f"{value / threshold:g}{suffix}"
    return f"{value:g}"


def _money_axis(axes: Axes, *, zero_line: bool = True) -> None:
    from matplotlib.ticker import FuncFormatter

    axes.yaxis.set_major_formatter(FuncFormatter(_compact))
    axes.grid(axis="y", alpha=0.3)
    if zero_line:
        axes.axhline(0, color="#9e9e9e", linewidth=0.8)


def _colours(names: Sequence[str]) -> dict[str, Any]:
    from matplotlib import colormaps

    palette = colormaps["tab20"]
    return {name: palette(index % palette.N) for index, name in enumerate(names)}


def _by(records: list[dict[str, Any]], column: str) -> dict[Any, list[dict[str, Any]]]:
    """Records grouped by a column, groups in order of first appearance."""
    groups: dict[Any, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(record[column], []).append(record)
    return groups


def _spend_by_category(chart: ChartData) -> Figure:
    records = chart.plotted.records()
    owners = _by(records, "owner")
    categories = sorted({r["category"] for r in records})
    colours = _colours(categories)
    figure = _figure(0.6 + 2.8 * math.ceil(len(owners) / 2))
    figure.suptitle(f"{chart.title} ({records[0]['currency']})")
    for axes, (owner, rows) in zip(_grid(figure, len(owners), 2), owners.items(), strict=True):
        months = sorted({r["month"] for r in rows})
        above = [0.0] * len(months)
        below = [0.0] * len(months)
        for category in categories:
            values = [
                sum(_float(r["net spend"]) for r in rows if r["month"] == month and r["category"] == category)
                for month in months
            ]
            if not any(values):
                continue
            bottoms = [above[i] if v >= 0 else below[i] for i, v in enumerate(values)]
            axes.bar(range(len(months)), values, bottom=bottoms, color=colours[category], label=category)
            for i, v in enumerate(values):
                if v >= 0:
                    above[i] += v
                else:
                    below[i] += v
        axes.set_title(owner, fontsize=10)
        axes.set_xticks(range(len(months)), months)
        _money_axis(axes)
    _legend(figure, categories, colours)
    return figure


def _legend(figure: Figure, names: Sequence[str], colours: dict[str, Any]) -> None:
    from matplotlib.patches import Patch

    figure.legend(
        handles=[Patch(color=colours[name], label=name) for name in names],
        loc="outside right upper",
        fontsize=8,
        frameon=False,
    )


def _budget_vs_cap(chart: ChartData) -> Figure:
    records = [r for r in chart.plotted.records() if r["cap"]]
    if not records:
        return _empty(chart)
    labels = [f"{r['owner']} · {r['category']}" for r in records]
    spent = [_float(r["spent"]) / _float(r["cap"]) * 100 for r in records]
    projected = [_float(r["projected"]) / _float(r["cap"]) * 100 for r in records]
    figure = _figure(1.2 + 0.38 * len(records))
    figure.suptitle(f"{chart.title}, {records[0]['month']}")
    axes = figure.subplots()
    positions = list(range(len(records)))[::-1]
    axes.barh(
        positions, projected, height=0.7, color="none", edgecolor="#757575", hatch="//", label="projected"
    )
    axes.barh(
        positions,
        spent,
        height=0.7,
        color=[NEGATIVE if s > 100 else POSITIVE for s in spent],
        label="spent",
    )
    axes.axvline(100, color=NET, linewidth=1.2, linestyle="--", label="cap")
    # One budget far over its cap would squash the others: the axis stops at MAX_CAP_SHARE and a
    # bar beyond it carries its figure.
    limit = min(max([*spent, *projected, 100.0]) * 1.05, MAX_CAP_SHARE)
    axes.set_xlim(0, limit)
    for position, share, ahead in zip(positions, spent, projected, strict=True):
        if max(share, ahead) > limit:
            text = f"spent {share:,.0f} %, projected {ahead:,.0f} %"
            axes.text(limit * 0.98, position, text, ha="right", va="center", fontsize=8, color=NET)
    axes.set_yticks(positions, labels, fontsize=8)
    axes.set_xlabel("% of the monthly cap")
    axes.grid(axis="x", alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    return figure


def _cash_flow(chart: ChartData) -> Figure:
    records = chart.plotted.records()
    owners = _by(records, "owner")
    figure = _figure(0.6 + 2.8 * math.ceil(len(owners) / 2))
    figure.suptitle(f"{chart.title} ({records[0]['currency']})")
    for axes, (owner, rows) in zip(_grid(figure, len(owners), 2), owners.items(), strict=True):
        x = list(range(len(rows)))
        income = [_float(r["income"]) for r in rows]
        other_in = [_float(r["other transfers in"]) for r in rows]
        spend = [-_float(r["spend"]) for r in rows]
        other_out = [-_float(r["other transfers out"]) for r in rows]
        axes.bar(x, income, width=0.6, color=POSITIVE, label="income")
        axes.bar(x, other_in, width=0.6, bottom=income, color="#a5d6a7", label="other transfers in")
        axes.bar(x, spend, width=0.6, color=NEGATIVE, label="spend")
        axes.bar(x, other_out, width=0.6, bottom=spend, color="#ef9a9a", label="other transfers out")
        axes.plot(x, [_float(r["net"]) for r in rows], color=NET, marker="D", label="net")
        axes.set_title(owner, fontsize=10)
        axes.set_xticks(x, [r["month"] for r in rows])
        _money_axis(axes)
    handles, labels = figure.axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside right upper", fontsize=8, frameon=False)
    return figure


def _balances(chart: ChartData) -> Figure:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    accounts = _by(chart.plotted.records(), "account key")
    columns = 3
    figure = _figure(0.6 + 1.9 * math.ceil(len(accounts) / columns))
    figure.suptitle(chart.title)
    for axes, rows in zip(_grid(figure, len(accounts), columns, sharex=True), accounts.values(), strict=True):
        axes.plot([r["day"] for r in rows], [_float(r["balance"]) for r in rows], color="#1565c0")
        axes.set_title(rows[0]["account"], fontsize=8)
        axes.tick_params(labelsize=7)
        # A balance's movement is the point: the axis fits the line rather than reaching 0.
        _money_axis(axes, zero_line=False)
        locator = AutoDateLocator(maxticks=4)
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    return figure


def _recon_match_rate(chart: ChartData) -> Figure:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    figure = _figure(3.6)
    figure.suptitle(chart.title)
    axes = figure.subplots()
    for rows in _by(chart.plotted.records(), "account key").values():
        rates = [_float(r["match rate"]) * 100 for r in rows]
        axes.plot([r["day"] for r in rows], rates, marker="o", markersize=3, label=rows[0]["account"])
    axes.set_ylim(0, 105)
    axes.set_ylabel("% of the day's bank lines matched")
    axes.grid(alpha=0.3)
    locator = AutoDateLocator()
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    figure.legend(loc="outside lower center", fontsize=8, frameon=False, ncols=3)
    return figure


def _exceptions_by_age(chart: ChartData) -> Figure:
    from matplotlib.ticker import MaxNLocator

    records = chart.plotted.records()
    reasons = sorted({r["reason"] for r in records})
    colours = _colours(reasons)
    figure = _figure(3.6)
    figure.suptitle(chart.title)
    axes = figure.subplots()
    bottoms = [0] * len(AGE_BUCKETS)
    for reason in reasons:
        counts = [
            sum(r["open exceptions"] for r in records if r["age"] == bucket and r["reason"] == reason)
            for bucket in AGE_BUCKETS
        ]
        axes.bar(AGE_BUCKETS, counts, bottom=bottoms, color=colours[reason], label=reason)
        bottoms = [b + c for b, c in zip(bottoms, counts, strict=True)]
    axes.set_ylabel("open exceptions")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(axis="y", alpha=0.3)
    axes.legend(fontsize=8)
    return figure


DRAWERS: dict[str, Callable[[ChartData], Figure]] = {
    "spend_by_category": _spend_by_category,
    "budget_vs_cap": _budget_vs_cap,
    "cash_flow": _cash_flow,
    "balances": _balances,
    "recon_match_rate": _recon_match_rate,
    "exceptions_by_age": _exceptions_by_age,
}
