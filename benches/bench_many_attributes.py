"""A fleet whose policy has 70 attributes, end to end: N x N devices (at most 2,000 distinct
per side), JSON Lines on disk to the top 5 targets of every source written out, by the command
line, as ``bench_fleet.py`` runs the default policy's 7.

70 rules are more than a 64-bit failure mask holds: the native kernel takes several failure
words per pair (fastmatch/intern.py), where it once handed such matches to the reference,
whose dense N x N arrays (74.5 GiB at 100,000 x 100,000) did not fit. N is
``FASTMATCH_BENCH_FLEET`` (100,000 quick); ``extra_info`` holds the peak resident memory of
the rounds (``peak_rss_bytes``).
"""

from __future__ import annotations

import resource
import subprocess
import sys

import support

N = support.sizes().fleet
K = support.FLEET_DISTINCT
ATTRIBUTES = 70
DEFAULT_ATTRIBUTES = 7  # the default policy's, which the generated fleet uses


def test_many_attributes_end_to_end(benchmark, tmp_path):
    sources, targets, policy = support.many_attribute_files(N, K, ATTRIBUTES - DEFAULT_ATTRIBUTES)
    out = tmp_path / "top5.jsonl"
    command = [sys.executable, "-m", "fastmatch", "match", str(sources), str(targets),
               "--policy", str(policy), "--top", "5", "--format", "json", "-o", str(out), "--quiet"]
    env = support.child_env()

    def run():
        subprocess.run(command, check=True, env=env)

    benchmark.group = f"fleet {N:,} x {N:,}, {ATTRIBUTES} attributes: end to end"
    benchmark.pedantic(run, rounds=1 if N > 200_000 else 3, iterations=1)
    benchmark.extra_info.update(
        {"implementation": "fastmatch match (CLI)", "size": str(N), "pairs": N * N, "attributes": ATTRIBUTES,
         "peak_rss_bytes": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}
    )
    with open(out, encoding="utf-8") as lines:
        assert sum(1 for _ in lines) == N
