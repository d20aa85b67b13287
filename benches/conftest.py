"""The benchmark suite: ``python -m pytest benches --benchmark-json=out.json``.

``bench_*.py`` hold the benchmarks (pytest-benchmark), ``test_*.py`` the
suite's own checks; sizes are chosen with ``FASTMATCH_BENCH_SIZES`` (see
``support.py``): ``quick`` by default, ``full`` for the issue's sizes.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

import pytest

import importlib.util  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
if importlib.util.find_spec("fastmatch") is None:  # not installed: run against the source tree (built in place)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import support  # noqa: E402


def pytest_collect_file(file_path: Path, parent):
    """Collect bench_*.py as test modules, without changing the project's pytest settings."""
    # A file named on the command line is collected by pytest itself.
    if file_path.suffix == ".py" and file_path.name.startswith("bench_") and not parent.session.isinitpath(file_path):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


def pytest_report_header(config):
    s = support.sizes()
    return [
        f"fastmatch benches: FASTMATCH_BENCH_SIZES={os.environ.get('FASTMATCH_BENCH_SIZES', 'quick')} "
        f"(dense {', '.join(map(str, s.kernel))}; reference up to {s.reference_max}; fleet {s.fleet:,} per side)",
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; cache {support.cache_dir()}",
    ]


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["fastmatch_bench_sizes"] = os.environ.get("FASTMATCH_BENCH_SIZES", "quick")
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(line for line in cpuinfo if line.startswith("model name"))
        machine_info["cpu_model"] = model.split(":", 1)[1].strip()
    except (OSError, StopIteration):
        pass


def pytest_terminal_summary(terminalreporter):
    """The tables the benchmark modules registered with ``support.add_summary`` (e.g. bench_products)."""
    for make in support.SUMMARIES:
        title, lines = make()
        if lines:
            terminalreporter.write_sep("-", title)
            for line in lines:
                terminalreporter.write_line(line)
