"""The report's charts: matplotlib figures drawn from the figures' data, as inline SVG.

Static SVG needs no script to show, prints, and scales; a heatmap's cells are one embedded
PNG (matplotlib's ``imshow``), so its size does not grow with the number of cells. Text stays
text (``svg.fonttype = none``), so the page can be searched and the labels read by tools.
"""

from __future__ import annotations

import io
import re
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from ..errors import printable

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.colors import Colormap
    from matplotlib.figure import Figure

MAX_LABEL = 44
# Panels of the version-skew chart and bars of the capacity chart; the page's tables and the
# JSON hold the rest.
MAX_VERSION_PANELS = 6
MAX_CAPACITY_TYPES = 24


def _matplotlib() -> ModuleType:
    """pyplot on the Agg canvas (no display), with settings that make SVG text and ids stable."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {"svg.fonttype": "none", "svg.hashsalt": "fastmatch-report", "font.size": 9, "axes.titlesize": 10}
    )
    return plt


def label(text: str) -> str:
    """A value as a chart label: control characters escaped, long ones shortened. Labels are
    drawn with ``parse_math=False``, so a ``$`` is a dollar, never mathtext."""
    shown = printable(str(text))
    return shown if len(shown) <= MAX_LABEL else shown[: MAX_LABEL - 1] + "\u2026"


def _svg(fig: Figure) -> str:
    """The figure as an ``<svg>`` element for inline HTML: no XML prolog, DOCTYPE or
    namespace declarations (HTML knows SVG's), no metadata: nothing that names a URL."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Creator": None, "Date": None, "Format": None, "Type": None})
    _matplotlib().close(fig)
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", text, count=3)
    return re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)


def _inches(labels: Sequence[str]) -> float:
    """About how wide the longest label is drawn, in inches (9 pt text): margins are sized from
    it, where matplotlib's tight and constrained layouts would measure every label again."""
    def width(text: str) -> float:
        return sum(0.088 if c.isupper() or c in "_mw%@" else 0.062 for c in text)

    return 0.1 + max((width(label(t)) for t in labels), default=0.0)


def _axes(
    plt: ModuleType, width: float, height: float, left: float, bottom: float, right: float = 0.3, top: float = 0.35
) -> tuple[Figure, Axes]:
    """A figure of ``width`` x ``height`` inches whose one axes leaves these margins (inches)."""
    fig = plt.figure(figsize=(width, height))
    ax = fig.add_axes((left / width, bottom / height, 1 - (left + right) / width, 1 - (bottom + top) / height))
    return fig, ax


def _ticks(
    axis_set: Callable[..., Any], positions: Sequence[float] | np.ndarray, labels: Sequence[str], **options: Any
) -> None:
    axis_set(positions, labels=[label(t) for t in labels], parse_math=False, **options)


def reasons_chart(reasons: dict[str, Any]) -> str | None:
    """How often each reason decides a failing pair: over all pairs, and over pairs of one mdev type."""
    shares: dict[str, dict[str, float]] = {}
    for kind in ("all", "same_type"):
        failing = reasons[kind]["failing_pairs"]
        for entry in reasons[kind]["counts"]:
            shares.setdefault(entry["reason"], {})[kind] = 100 * entry["pairs"] / failing if failing else 0
    if not shares:
        return None
    names = sorted(shares, key=lambda name: (-shares[name].get("same_type", 0), -shares[name].get("all", 0), name))
    plt = _matplotlib()
    left = _inches(names)
    fig, ax = _axes(plt, left + 5.5, 1.0 + 0.36 * len(names), left, 0.55, top=0.1)
    y = np.arange(len(names))
    for offset, kind, colour, title in ((-0.2, "all", "#9aa5b1", "all pairs"), (0.2, "same_type", "#1f6feb", "pairs of one mdev type")):
        ax.barh(y + offset, [shares[n].get(kind, 0) for n in names], height=0.38, color=colour, label=title)
    _ticks(ax.set_yticks, y, names)
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of failing pairs (%); a pair can fail for several reasons")
    ax.legend(loc="lower right", frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def _share(compatible: list[list[int]], pairs: list[list[int]]) -> np.ndarray:
    compatible_array = np.array(compatible, dtype=np.float64).reshape(len(compatible), -1)
    pairs_array = np.array(pairs, dtype=np.float64).reshape(compatible_array.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs_array > 0, compatible_array / pairs_array, np.nan)


def _cmap(plt: ModuleType) -> Colormap:
    # Light where nothing is compatible; grey where there are no pairs at all.
    cmap: Colormap = plt.get_cmap("YlGnBu").with_extremes(bad="#d0d0d0")
    return cmap


def _matrix(
    plt: ModuleType, share: np.ndarray, rows: list[str], columns: list[str], title: str, ylabel: str, xlabel: str, cell: float
) -> str:
    """A share matrix (rows x columns) with its labels and a colour bar: cells ``cell`` inches,
    or larger where there are few, so that a small matrix still reads."""
    left, bottom = _inches(rows) + 0.35, _inches(columns) + 0.35
    across, down = max(cell * len(columns), 1.5), max(cell * len(rows), 1.3)
    width, height = left + across + 1.1, bottom + down + 0.35
    fig, ax = _axes(plt, width, height, left, bottom, right=1.1)
    image = ax.imshow(share, cmap=_cmap(plt), vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    # Labels as plain texts beside the cells: matplotlib's ticks cost twice as much to draw,
    # and a fleet's heatmap has a hundred of them.
    ax.set_xticks([])
    ax.set_yticks([])
    beside_rows, below_columns = ax.get_yaxis_transform(), ax.get_xaxis_transform()
    for i, text in enumerate(rows):
        ax.text(-0.04 / across, i, label(text), transform=beside_rows, ha="right", va="center", parse_math=False)
    for j, text in enumerate(columns):
        ax.text(j, -0.04 / down, label(text), transform=below_columns, ha="center", va="top", rotation=90, parse_math=False)
    ax.set_ylabel(ylabel)
    ax.set_xlabel(xlabel)
    ax.yaxis.set_label_coords(-(left - 0.25) / across, 0.5)
    ax.xaxis.set_label_coords(0.5, -(bottom - 0.25) / down)
    if title:
        ax.set_title(label(title), parse_math=False)
    bar = fig.add_axes((1 - 0.85 / width, (bottom + down - min(1.6, down)) / height, 0.12 / width, min(1.6, down) / height))
    fig.colorbar(image, cax=bar, label="share compatible")
    return _svg(fig)


def heatmap_chart(heatmap: dict[str, Any]) -> str | None:
    """Source groups against target groups, each cell the share of its device pairs that are compatible."""
    rows, columns = heatmap["source_groups"], heatmap["target_groups"]
    if not rows or not columns:
        return None
    return _matrix(
        _matplotlib(),
        _share(heatmap["compatible_pairs"], heatmap["pairs"]),
        [f"{g['group']} ({g['devices']:,})" for g in rows],
        [f"{g['group']} ({g['devices']:,})" for g in columns],
        "",
        "source group (devices)",
        "target group (devices)",
        0.2,
    )


def versions_charts(versions: list[dict[str, Any]]) -> list[str]:
    """Per device type (the MAX_VERSION_PANELS with most sources), which source versions reach
    which target versions: one small matrix each, the share of their pairs that are compatible."""
    plt = _matplotlib()
    return [
        _matrix(
            plt,
            _share(entry["compatible_pairs"], entry["pairs"]),
            [v["version"] for v in entry["source_versions"]],
            [v["version"] for v in entry["target_versions"]],
            entry["type"],
            "source version",
            "target version",
            0.22,
        )
        for entry in versions[:MAX_VERSION_PANELS]
    ]


def capacity_chart(capacity: list[dict[str, Any]]) -> str | None:
    """Per mdev type: the instances its targets can still create, against the sources of that
    type and the sources that could use them (a compatible target of the type with capacity)."""
    shown = [entry for entry in capacity if entry["source_devices"] or entry["instances"]][:MAX_CAPACITY_TYPES]
    if not shown:
        return None
    plt = _matplotlib()
    names = [entry["type"] for entry in shown]
    left = _inches(names)
    fig, ax = _axes(plt, left + 5.5, 1.0 + 0.42 * len(shown), left, 0.55, top=0.1)
    y = np.arange(len(shown))
    bars = (
        ("instances", "#2da44e", "instances available (targets' capacity)"),
        ("source_devices", "#9aa5b1", "source devices of the type"),
        ("sources_reaching", "#1f6feb", "sources that could use them"),
    )
    for k, (key, colour, title) in enumerate(bars):
        ax.barh(y + (k - 1) * 0.27, [entry[key] for entry in shown], height=0.26, color=colour, label=title)
    _ticks(ax.set_yticks, y, names)
    ax.set_ylim(len(shown) - 0.5, -0.5)
    ax.set_xlabel("devices / instances")
    ax.legend(loc="lower right", frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def charts(figures: dict[str, Any]) -> dict[str, Any]:
    """Every chart of the page, by name: an inline ``<svg>`` (a list of them for the versions),
    or None (an empty list) where there is nothing to draw."""
    return {
        "reasons": reasons_chart(figures["reasons"]),
        "heatmap": heatmap_chart(figures["heatmap"]),
        "versions": versions_charts(figures["versions"]),
        "capacity": capacity_chart(figures["capacity"]),
    }
