"""``fastmatch report`` on the fleet benchmark's fleet: N x N devices with at most 2,000
distinct descriptors per side (N is ``FASTMATCH_BENCH_FLEET``: 100,000 quick, 1,000,000 full,
where the issue asks for at most 30 s and a page under 10 MB).

Timed, in this process: the match, the report's figures and the HTML page written to disk.
Loading the two files is another stage's work: it is timed apart, once, and kept in
``extra_info`` (``load_seconds``) with each phase's time of the last round and the page's size.
"""

from __future__ import annotations

import time

import support

import fastmatch
from fastmatch.outfile import write_atomically
from fastmatch.report import render_html, report_figures

N = support.sizes().fleet
K = support.FLEET_DISTINCT
MAX_PAGE_BYTES = 10 * 10**6


def test_report_html(benchmark, tmp_path):
    source_path, target_path = support.fleet_files(N, N, K)
    policy = fastmatch.Policy.default()
    start = time.perf_counter()
    sources, targets = fastmatch.load(source_path, policy), fastmatch.load(target_path, policy)
    load_seconds = time.perf_counter() - start
    page = tmp_path / "report.html"
    phases: dict[str, float] = {}

    def run():
        times = [time.perf_counter()]
        result = fastmatch.match(sources, targets, policy)
        times.append(time.perf_counter())
        figures = report_figures(result)
        times.append(time.perf_counter())
        write_atomically(page, [render_html(figures)])
        times.append(time.perf_counter())
        phases.update(zip(("match_seconds", "figures_seconds", "html_seconds"), (b - a for a, b in zip(times, times[1:]))))

    benchmark.group = f"report {N:,} x {N:,}"
    benchmark.pedantic(run, rounds=1 if N > 200_000 else 3, iterations=1)
    size = page.stat().st_size
    benchmark.extra_info.update(
        {"implementation": "match + report_figures + render_html", "size": str(N), "pairs": N * N,
         "load_seconds": round(load_seconds, 2), "page_bytes": size, **{k: round(v, 2) for k, v in phases.items()}}
    )
    assert size < MAX_PAGE_BYTES
