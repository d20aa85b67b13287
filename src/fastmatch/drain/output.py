"""A plan as text: ``table`` for a person, ``json`` (one object) and ``csv`` for tools.

JSON is :meth:`Plan.json`: ``{"moves": [...], "unplaced": [...], "summary": {...}}``; each move
carries its ``rank`` and its score's parts, never the kernel's int64 score. CSV has one row per
move and one per device of an unplaced VM (``kind`` tells them apart); its summary goes to
standard error, since a CSV has no place for it.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Callable, Iterable, Iterator

from ..errors import printable
from .result import Plan

CSV_COLUMNS = (
    "kind", "wave", "vm", "source", "from_host", "target", "to_host", "rank",
    "exact", "same_type", "version", "major_distance", "minor_distance", "reasons",
)


def format_json(plan: Plan, cell: Callable[[str], str] = str) -> Iterator[str]:
    yield json.dumps(plan.json(), ensure_ascii=False) + "\n"


def format_csv(plan: Plan, cell: Callable[[str], str] = str) -> Iterator[str]:
    """``cell`` is applied to every text a file supplies (ids, hosts, VM names): the command line
    passes the one that keeps a spreadsheet from running a cell as a formula."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def row(values: Iterable[object]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(["" if v is None else v for v in values])
        return buffer.getvalue()[:-2] + "\n"

    yield row(CSV_COLUMNS)
    for move in plan.to_records():
        score = move["score"]
        yield row([
            "move", move["wave"], cell(move["vm"]), cell(move["source"]), cell(move["from_host"]), cell(move["target"]),
            cell(move["to_host"]), move["rank"], score["exact"], score["same_type"], score["version"],
            score["major_distance"], score["minor_distance"], None,
        ])
    sources = plan.fleet.sources
    for entry in plan.unplaced:
        for source in entry["sources"]:
            host = sources.hosts[sources.id_index[source]]
            yield row(["unplaced", None, cell(entry["vm"]), cell(source), cell(host)] + [None] * 8 + ["; ".join(entry["reasons"])])


def format_table(plan: Plan, cell: Callable[[str], str] = str) -> Iterator[str]:
    rows = [("WAVE", "VM", "SOURCE", "FROM", "TARGET", "TO", "RANK", "SCORE")]
    parts = plan.score_parts
    for m, move in enumerate(plan.to_records()):
        rows.append((
            str(move["wave"]), printable(move["vm"]), printable(move["source"]), printable(move["from_host"]),
            printable(move["target"]), printable(move["to_host"]), str(move["rank"]), parts.words(m),
        ))
    if len(rows) > 1:
        widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]) - 1)]
        for r in rows:
            yield "  ".join(f"{v:<{w}}" for v, w in zip(r, widths)) + "  " + r[-1] + "\n"
    else:
        yield "(no moves)\n"
    unplaced = plan.unplaced
    if unplaced:
        yield f"\nUnplaced VMs ({len(unplaced)}):\n"
        for entry in unplaced:
            yield f"  {printable(entry['vm'])}: {', '.join(printable(s) for s in entry['sources'])}\n"
            for reason in entry["reasons"]:
                yield f"    - {printable(reason)}\n"
    yield "\n" + summary_text(plan) + "\n"


def summary_text(plan: Plan) -> str:
    s = plan.summary
    solver = s["solver"]
    lines = [
        f"Summary: {s['vms']['placed']:,} of {s['vms']['total']:,} VMs placed ({s['devices']['placed']:,} of "
        f"{s['devices']['total']:,} devices) from {len(s['drained_hosts'])} drained host(s), in {s['waves']} wave(s)"
        f" (at least {s['fewest_waves_possible']} needed); strategy {s['strategy']}, status {s['status']}",
        f"  solver {solver['name']}: {solver['seconds']} s"
        + (f", {solver['variables']:,} variables, {solver['constraints']:,} constraints" if "variables" in solver else "")
        + f"; whole plan {s['seconds']} s",
    ]
    if solver.get("bound") and solver.get("objective") != solver.get("bound"):
        lines.append(f"  not proven optimal: the bound is {solver['bound']}, the plan reaches {solver['objective']}")
    if s["status"] == "time-limit":
        lines.append("  the time limit ran out: this is the best plan found, not proven optimal")
    used = sorted(s["capacity_used"].items(), key=lambda kv: (-kv[1], kv[0]))
    if used:
        shown = ", ".join(f"{printable(h)} {n}" for h, n in used[:10])
        lines.append(f"  new devices per host: {shown}" + (f" and {len(used) - 10} more hosts" if len(used) > 10 else ""))
    return "\n".join(lines)


FORMATTERS = {"table": format_table, "json": format_json, "csv": format_csv}
