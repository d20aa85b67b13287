"""The report as one self-contained HTML page: styles inline, charts as inline SVG, the
stranded sources as an embedded CSV (a ``data:`` URL). No script and no URL to fetch.

Jinja2 renders it with autoescape on: every id and value from the inputs is escaped, and
only the charts (SVG that matplotlib wrote, its text escaped there) go in as markup.
"""

from __future__ import annotations

import base64
import csv
import io
from typing import TYPE_CHECKING, Any

from ..errors import FastmatchError
from .charts import MAX_VERSION_PANELS, charts

if TYPE_CHECKING:
    import jinja2

# Rows of the stranded-groups table and of the capacity table; the CSV and the JSON have all.
SHOWN_GROUPS = 50
SHOWN_TYPES = 200
CSV_COLUMNS = ("source", "host", "descriptor")
# Unplaced VMs listed on the page with --drain; the embedded CSV and the JSON have all.
SHOWN_UNPLACED = 50
UNPLACED_CSV_COLUMNS = ("vm", "sources", "reasons")
# A spreadsheet runs a cell that begins with one of these as a formula (OWASP, "CSV Injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str) -> str:
    """A value a spreadsheet shows as text: a leading ``'`` before what would start a formula."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def stranded_csv(figures: dict[str, Any]) -> str:
    """Every stranded source: its id, host and descriptor group, one row each (``\\n`` ends rows)."""
    stranded = figures["stranded"]
    labels = [group["descriptor"] for group in stranded["groups"]]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(
        (_cell(device), _cell(host), _cell(labels[group]))
        for device, host, group in zip(stranded["ids"], stranded["hosts"], stranded["group"])
    )
    return buffer.getvalue()


def unplaced_csv(figures: dict[str, Any]) -> str:
    """Every VM a drain plan leaves behind: its name, its devices and its reasons (each list
    joined by ``"; "``), one row a VM."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(UNPLACED_CSV_COLUMNS)
    writer.writerows(
        (_cell(entry["vm"]), _cell("; ".join(entry["sources"])), _cell("; ".join(entry["reasons"])))
        for entry in figures["drain"]["unplaced"]
    )
    return buffer.getvalue()


def _csv_url(text: str) -> str:
    return "data:text/csv;charset=utf-8;base64," + base64.b64encode(text.encode("utf-8")).decode("ascii")


def _environment() -> jinja2.Environment:
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("fastmatch.report", "."),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["n"] = lambda value: f"{value:,}"
    return environment


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def render_html(figures: dict[str, Any]) -> str:
    """The page for ``figures`` (fastmatch.report.report_figures)."""
    try:
        import jinja2  # noqa: F401
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise FastmatchError(
            f"the HTML report needs matplotlib and Jinja2 ({exc.name} is missing): pip install 'fastmatch[report]'"
        ) from None
    template = _environment().get_template("page.html.j2")
    same_type = {entry["reason"]: entry["pairs"] for entry in figures["reasons"]["same_type"]["counts"]}
    reason_rows = [(entry["reason"], entry["pairs"], same_type.get(entry["reason"], 0)) for entry in figures["reasons"]["all"]["counts"]]
    return template.render(
        f=figures,
        s=figures["summary"],
        charts=charts(figures),
        csv_url=_csv_url(stranded_csv(figures)),
        unplaced_csv_url=_csv_url(unplaced_csv(figures)) if "drain" in figures else None,
        shown_unplaced=SHOWN_UNPLACED,
        reason_rows=reason_rows,
        shown_groups=SHOWN_GROUPS,
        shown_types=SHOWN_TYPES,
        shown_version_panels=min(MAX_VERSION_PANELS, len(figures["versions"])),
        pct=_percent,
    )
