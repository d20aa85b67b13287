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
    assert "drain" not in data and "drain" not in expected


DRAINED = ("kbl-01", "kbl-02", "t4-01", "t4-02")
# The plan's times differ from one run to the next; every other figure must not.
TIMES = ("seconds",)


def _without_times(value):
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if k not in TIMES}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


def test_drain_adds_the_plans_summary_waves_and_unplaced_vms(capsys, tmp_path):
    drain_file = tmp_path / "drain.txt"
    drain_file.write_text("# this week\n" + "\n".join(DRAINED) + "\n", encoding="utf-8")
    limits = tmp_path / "limits.toml"
    limits.write_text('"kbl-03" = 1\n', encoding="utf-8")
    argv = ["report", DEMO_SOURCES, DEMO_TARGETS, "--drain-file", drain_file, "--host-limits", limits, "--max-parallel", "2"]
    status, out, err = run(capsys, *argv, "--format", "json")
    assert status == 0 and err == ""
    data = json.loads(out)
    policy = fastmatch.Policy.default()
    sources, targets = fastmatch.load(DEMO_SOURCES, policy), fastmatch.load(DEMO_TARGETS, policy)
    plan = fastmatch.plan(sources, targets, DRAINED, policy, host_limits={"kbl-03": 1}, max_parallel=2)
    drain = data["drain"]
    assert _without_times(drain["summary"]) == _without_times(json.loads(json.dumps(plan.summary)))
    assert drain["summary"]["status"] == "optimal" and drain["summary"]["drained_hosts"] == list(DRAINED)
    assert drain["unplaced"] == plan.unplaced and len(plan.unplaced) == drain["summary"]["vms"]["unplaced"] > 0
    # Moves per wave, counted from the plan's own records.
    moves = plan.to_records()
    waves = sorted({m["wave"] for m in moves})
    assert len(waves) > 1
    assert drain["waves"] == [
        {"wave": w, "vms": len({m["vm"] for m in moves if m["wave"] == w}), "devices": sum(m["wave"] == w for m in moves)}
        for w in waves
    ]
    assert data["inputs"]["drain"]["bytes"] == drain_file.stat().st_size and data["inputs"]["host_limits"]["name"] == str(limits)
    for key in ("summary", "stranded", "capacity"):  # the fleet's figures are those without --drain
        assert data[key] == report_figures(fastmatch.match(sources, targets, policy))[key], key

    page = tmp_path / "report.html"
    status, out, err = run(capsys, *argv, "-o", page)
    assert (status, out, err) == (0, "", "")
    html = page.read_text(encoding="utf-8")
    assert '<section id="drain">' in html and 'id="unplaced-csv"' in html and 'id="drain-waves"' in html
    run(capsys, "report", DEMO_SOURCES, DEMO_TARGETS, "-o", page)
    assert '<section id="drain">' not in page.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "side_file, content, argv, expected",
    [
        (None, None, ["--drain", "nowhere"], "--drain: drained host 'nowhere': no source or target device is on it"),
        ("drain.txt", "kbl-01\nnowhere\n", ["--drain-file"], "drain.txt:2: drained host 'nowhere'"),
        ("limits.toml", "zz = 1\n", ["--drain", "kbl-01", "--host-limits"], "limits.toml: field 'zz': unknown host 'zz'"),
        ("limits.json", '{"kbl-02": -1}', ["--drain", "kbl-01", "--host-limits"], "limits.json: field 'kbl-02': expected an integer >= 0"),
        ("drain.txt", "kbl-01\n", ["--drain", "kbl-02", "--drain-file"], "with --drain or with --drain-file, not both"),
        ("limits.toml", '"kbl-02" = 1\n', ["--host-limits"], "no host to drain"),
        (None, None, ["--max-parallel", "2"], "no host to drain"),
        (None, None, ["--drain", "kbl-01", "--max-per-host", "0"], "argument --max-per-host: expected an integer >= 1"),
    ],
)
def test_bad_drain_input_is_one_line_exit_2(capsys, tmp_path, side_file, content, argv, expected):
    if side_file is not None:
        path = tmp_path / side_file
        path.write_text(content, encoding="utf-8")
        argv = [*argv, path]
    page = tmp_path / "report.html"
    page.write_text("old", encoding="utf-8")
    status, out, err = run(capsys, "report", DEMO_SOURCES, DEMO_TARGETS, *argv, "-o", page)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("fastmatch: error: ") and "Traceback" not in err, err
    assert expected in err, err
    assert page.read_text(encoding="utf-8") == "old"


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
