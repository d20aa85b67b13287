"""The report as a person sees it: rendered by headless Chromium, checked for console errors,
charts that are there and drawn, the summary's numbers and the stranded list's CSV."""

from __future__ import annotations

import base64
import csv
import io
import re
from html import unescape
from importlib import resources

import numpy as np
import pytest

import fastmatch
from fastmatch.report import render_html, report_figures

from browser import dump_dom, find_browser, probe, screenshot

PIL = pytest.importorskip("PIL.Image", reason="Pillow reads the screenshots: pip install '.[test]'")

CHARTS = ("chart-reasons", "chart-heatmap", "chart-versions", "chart-capacity")


@pytest.fixture(scope="module")
def browser():
    found = find_browser()
    if found is None:
        pytest.skip("no headless Chromium on this machine (Debian: apt-get install -y chromium; .ci/run installs it)")
    return found


# Drained in the demo's page: VMs that move, two at a time (several waves), and VMs that stay.
DRAINED = ("kbl-01", "kbl-02", "t4-01", "t4-02")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo fleet's result, a drain plan of it, and their report page."""
    data = resources.files("fastmatch")
    policy = fastmatch.Policy.default()
    with resources.as_file(data / "data/demo_sources.jsonl") as s, resources.as_file(data / "data/demo_targets.jsonl") as t:
        sources, targets = fastmatch.load(s, policy), fastmatch.load(t, policy)
    result = fastmatch.match(sources, targets, policy)
    plan = fastmatch.plan(sources, targets, DRAINED, policy, max_parallel=2)
    page = tmp_path_factory.mktemp("report") / "report.html"
    page.write_text(render_html(report_figures(result, drain=plan)), encoding="utf-8")
    return result, page, plan


def test_the_page_loads_without_console_errors_and_every_chart_is_drawn(browser, demo, tmp_path):
    _, page, _ = demo
    _, console = dump_dom(browser, page)
    assert console == []
    seen = probe(browser, page, tmp_path)
    assert seen["errors"] == [] and seen["console"] == []
    assert sorted(seen["boxes"]) == sorted(CHARTS)
    png = tmp_path / "report.png"
    assert screenshot(browser, page, png, seen["height"]) == []
    image = PIL.open(png).convert("L")
    assert image.size[1] >= seen["height"] - 1
    from PIL import ImageStat

    assert len(seen["boxes"]["chart-versions"]) == 6  # the demo fleet has 9 types on both sides: 6 drawn
    for chart, boxes in seen["boxes"].items():
        assert boxes, f"{chart} holds no <svg>"
        for box in boxes:
            assert box["width"] > 150 and box["height"] > 100, (chart, box)
            crop = image.crop((int(box["left"]), int(box["top"]), int(box["left"] + box["width"]), int(box["top"] + box["height"])))
            # A blank (or single-colour) box has no variance; a drawn chart has bars, cells and text.
            assert ImageStat.Stat(crop).var[0] > 200, (chart, ImageStat.Stat(crop).var[0])


def _figure_texts(dom: str) -> dict[str, int]:
    return {
        name: int(value.replace(",", ""))
        for name, value in re.findall(r'<dd data-figure="([^"]+)">([^<]*)</dd>', dom)
    }


def test_the_summary_in_the_dom_is_the_apis(browser, demo):
    result, page, plan = demo
    dom, _ = dump_dom(browser, page)
    shown = _figure_texts(dom)
    n, m = result.shape
    compatible = result.compatible
    available = result.targets.capacities > 0
    assert shown == {
        "sources.devices": n,
        "sources.hosts": len({h for h in result.sources.hosts if h}),
        "sources.descriptors": len(result.sources.descriptors),
        "targets.devices": m,
        "targets.hosts": len({h for h in result.targets.hosts if h}),
        "targets.descriptors": len(result.targets.descriptors),
        "targets.available": int(available.sum()),
        "compatible_pairs": int(compatible.sum()),
        "available_pairs": int(result.counts().sum()),
        "stranded_sources": len(result.stranded()),
        "drain.vms.placed": int(plan.vm_placed.sum()),
        "drain.vms.unplaced": len(plan.unplaced),
        "drain.devices.placed": len(plan.move_source),
        "drain.waves": int(plan.move_wave.max(initial=0)),
        "drain.total_rank_above_best": int((plan.move_rank - 1).sum()),
    }
    assert plan.move_wave.max() > 1 and plan.unplaced  # the page shows waves of moves and VMs left behind
    waves = re.search(r'<table id="drain-waves">(.*?)</table>', dom, re.S).group(1)
    rows = [[int(cell) for cell in re.findall(r'<td class="n">([0-9,]+)</td>', row)] for row in re.findall(r"<tr>(.*?)</tr>", waves, re.S)[1:]]
    assert rows == [
        [w, len(np.unique(plan.move_vm[plan.move_wave == w])), int((plan.move_wave == w).sum())]
        for w in range(1, int(plan.move_wave.max()) + 1)
    ]
    assert plan.status in re.search(r'<p [^>]*id="drain-solver"[^>]*>(.*?)</p>', dom, re.S).group(1)
    shown = [unescape(vm) for vm in re.findall(r'<tr><td class="id">([^<]*)</td>', re.search(r'<table id="drain-unplaced">(.*?)</table>', dom, re.S).group(1))]
    assert shown == [entry["vm"] for entry in plan.unplaced]


def _downloaded_csv(dom: str, link_id: str) -> list[list[str]]:
    link = re.search(rf'<a [^>]*id="{link_id}"[^>]*>', dom).group(0)
    assert f'download="{link_id.removesuffix("-csv")}.csv"' in link
    href = unescape(re.search(r'href="([^"]*)"', link).group(1))
    prefix = "data:text/csv;charset=utf-8;base64,"
    assert href.startswith(prefix)
    return list(csv.reader(io.StringIO(base64.b64decode(href[len(prefix):]).decode("utf-8"))))


def test_the_csv_downloads_hold_the_stranded_list_and_the_unplaced_vms(browser, demo):
    result, page, plan = demo
    dom, _ = dump_dom(browser, page)
    rows = _downloaded_csv(dom, "unplaced-csv")
    assert rows == [["vm", "sources", "reasons"]] + [
        [entry["vm"], "; ".join(entry["sources"]), "; ".join(entry["reasons"])] for entry in plan.unplaced
    ]
    rows = _downloaded_csv(dom, "stranded-csv")
    assert rows[0] == ["source", "host", "descriptor"]
    stranded = result.stranded()
    assert [row[0] for row in rows[1:]] == [result.sources.ids[i] for i in stranded]
    assert [row[1] for row in rows[1:]] == [result.sources.hosts[i] for i in stranded]


def test_hostile_ids_and_values_stay_text_in_the_browser(browser, tmp_path):
    """Ids and attribute values that are markup, in every place the page shows them."""
    evil = '"><img src=x onerror="document.title=\'pwned\'"><script>document.title="pwned"</script>$\\sqrt$ &amp;'
    sources = [{"id": "s-" + evil, "host": evil, "vm": "vm-" + evil,
                "self": {"mdev_type": "t" + evil, "vendor_driver": evil, "software_version": "1.0"}}]
    targets = [{"id": "t-" + evil, "host": "h", "self": {"mdev_type": "u" + evil, "vendor_driver": evil, "software_version": "1.1"}}]
    result = fastmatch.match(sources, targets)
    plan = fastmatch.plan(sources, targets, [evil])
    page = tmp_path / "hostile.html"
    page.write_text(render_html(report_figures(result, drain=plan)), encoding="utf-8")
    dom, console = dump_dom(browser, page)
    assert console == []
    assert "pwned" not in re.search(r"<title>(.*?)</title>", dom, re.S).group(1)
    assert "<img" not in dom and dom.count("<script") == 0
    # Shown as text: in the stranded table, the charts' labels and the drain's hosts and unplaced VMs.
    assert dom.count("onerror=") >= 4 and "&lt;script&gt;" in dom
    assert 'vm-"&gt;&lt;img src=x' in re.search(r'<table id="drain-unplaced">(.*?)</table>', dom, re.S).group(1)
    assert np.array_equal(result.stranded(), [0])
