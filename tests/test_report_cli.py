"""``fastmatch report``: the page and the JSON it writes, and how it refuses bad input."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

import fastmatch
from fastmatch.cli import main
from fastmatch.report import report_figures

DATA = Path(fastmatch.__file__).parent / "data"
DEMO_SOURCES = DATA / "demo_sources.jsonl"
DEMO_TARGETS = DATA / "demo_targets.jsonl"
CHARTS = ("chart-reasons", "chart-heatmap", "chart-versions", "chart-capacity")


def run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_the_page_is_one_self_contained_file(capsys, tmp_path):
    page = tmp_path / "report.html"
    status, out, err = run(capsys, "report", DEMO_SOURCES, DEMO_TARGETS, "-o", page)
    assert (status, out, err) == (0, "", "")
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    # Nothing to fetch: no URL at all (not even SVG's namespace names), no script, no stylesheet link.
    assert re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", html, re.I) is None
    assert "<script" not in html and "<link" not in html
    references = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert references and all(r.startswith(("data:", "#")) for r in references), [r[:40] for r in references]
    for chart in CHARTS:
        assert re.search(rf'<figure class="chart" id="{chart}">(<div class="panels">)?<svg', html), chart
    assert str(DEMO_SOURCES) in html and "built-in" in html


def test_json_holds_the_apis_figures(capsys, tmp_path):
    status, out, err = run(capsys, "report", DEMO_SOURCES, DEMO_TARGETS, "--format", "json")
    assert status == 0 and err == ""
    data = json.loads(out)
    policy = fastmatch.Policy.default()
    result = fastmatch.match(fastmatch.load(DEMO_SOURCES, policy), fastmatch.load(DEMO_TARGETS, policy), policy)
    expected = report_figures(result)
    for key in ("summary", "stranded", "reasons", "heatmap", "versions", "capacity", "policy", "sample"):
        assert data[key] == expected[key], key
    assert data["inputs"]["sources"]["bytes"] == DEMO_SOURCES.stat().st_size
    assert re.fullmatch(r"[0-9a-f]{64}", data["inputs"]["targets"]["sha256"])
    assert data["inputs"]["policy"]["name"] == "built-in"


def test_a_policy_file_and_standard_input_are_named(capsys, tmp_path, monkeypatch):
    policy = tmp_path / "policy.toml"
    policy.write_text('prefer = "newest"\n', encoding="utf-8")
    with open(DEMO_SOURCES, encoding="utf-8") as stdin:  # closed here, not left to the collector
        monkeypatch.setattr(sys, "stdin", stdin)
        status, out, _ = run(capsys, "report", "-", DEMO_TARGETS, "--policy", policy, "--format", "json")
    data = json.loads(out)
    assert status == 0 and data["policy"]["prefer"] == "newest"
    assert data["inputs"]["policy"]["name"] == str(policy) and data["inputs"]["policy"]["bytes"] == policy.stat().st_size
    assert data["inputs"]["sources"] == {"name": "<stdin>", "bytes": None, "sha256": None, "note": "not a regular file: read once, not hashed"}


def test_bad_input_is_one_line_and_leaves_the_output_as_it_was(capsys, tmp_path):
    targets = tmp_path / "targets.jsonl"
    targets.write_text('{"id": "t1", "self": {"mdev_type": "a"}}\n{"id": "t9", "self": {"software_version": "v2+"}}\n', encoding="utf-8")
    page = tmp_path / "report.html"
    page.write_text("old", encoding="utf-8")
    status, out, err = run(capsys, "report", DEMO_SOURCES, targets, "-o", page)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{targets}:2: record 't9': field 'self.software_version': invalid version" in err
    assert page.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "targets.jsonl"]


def test_skip_invalid_reports_what_it_left_out(capsys, tmp_path):
    targets = tmp_path / "targets.jsonl"
    targets.write_text(DEMO_TARGETS.read_text(encoding="utf-8") + '{"id": "bad", "self": {"software_version": "v2+"}}\n', encoding="utf-8")
    status, out, err = run(capsys, "report", DEMO_SOURCES, targets, "--skip-invalid", "--format", "json")
    assert status == 0
    assert json.loads(out)["summary"]["targets"]["devices"] == 48
    assert "1 invalid record skipped" in err


def test_without_the_report_extra_the_page_says_what_to_install(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "jinja2", None)  # import jinja2 raises ImportError
    status, out, err = run(capsys, "report", DEMO_SOURCES, DEMO_TARGETS, "-o", tmp_path / "r.html")
    assert status == 2
    assert "pip install 'fastmatch[report]'" in err and err.count("\n") == 1
    assert not (tmp_path / "r.html").exists()
    # The numbers need neither.
    status, out, _ = run(capsys, "report", DEMO_SOURCES, DEMO_TARGETS, "--format", "json")
    assert status == 0 and json.loads(out)["summary"]["stranded_sources"] == 10


@pytest.mark.parametrize("value", ["=cmd|' /C calc'!A0", "+1", "@SUM(1)"])
def test_the_stranded_csv_neutralises_formulas(value):
    from fastmatch.report.page import stranded_csv

    result = fastmatch.match([{"id": value, "host": value, "self": {"mdev_type": "a"}}], [])
    rows = stranded_csv(report_figures(result)).splitlines()
    assert rows[1].startswith("'" + value[0])
