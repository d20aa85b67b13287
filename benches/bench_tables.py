"""The ranked candidates as a table: ``to_records(5)`` and ``to_pandas(5)`` beside the
``top_k(5)`` they are made from, on the generated fleet (``FASTMATCH_BENCH_FLEET`` devices a
side, at most 2,000 distinct descriptors; 100,000 quick).

The table adds, per candidate, its ids, rank and score parts, column by column (no Python
per candidate): what it costs over ``top_k`` is that. ``extra_info`` holds the rows.
"""

from __future__ import annotations

from functools import cache

import pytest

import fastmatch
import support

N = support.sizes().fleet
K = 5


@cache
def _result() -> fastmatch.MatchResult:
    sources, targets = support.fleet_files(N, N, support.FLEET_DISTINCT)
    return fastmatch.match(fastmatch.load(sources), fastmatch.load(targets))


@pytest.mark.parametrize("output", ["top_k", "to_records", "to_pandas"])
def test_ranked_table(benchmark, output):
    if output == "to_pandas":
        pytest.importorskip("pandas")
    result = _result()
    make = getattr(result, output)
    benchmark.group = f"fleet {N:,} x {N:,}: the top {K} as a table"
    made = benchmark.pedantic(make, args=(K,), rounds=5, warmup_rounds=1, iterations=1)
    if output == "top_k":
        rows = int((made[0] >= 0).sum())
    else:  # a dict of columns, or a DataFrame
        rows = len(made["rank"])
    benchmark.extra_info.update({"output": output, "size": str(N), "rows": rows})
    assert rows == int((result.top_k(K)[0] >= 0).sum())
