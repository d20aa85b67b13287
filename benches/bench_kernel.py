"""The dense kernel: no two descriptors alike, default policy, a third of the targets with records.

At each size n (n x n class pairs): the plain-Python reference (small sizes
only), the NumPy-broadcast baseline (``numpy_baseline.py``) and the native
kernel with 1 and 2 workers, side by side in one group. NumPy and native both
start from the same interned arrays and write into the same preallocated
outputs (interning is measured in ``bench_load.py``); the reference works on
the devices themselves. ``extra_info`` holds ``pairs`` and ``pairs_per_second``.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastmatch
import support
from numpy_baseline import NumpyBaseline

SIZES = support.sizes()
# native-N writes the whole class-pair matrix (as `.scores`/`.reasons` do); native-N-blocks
# writes each block into one reused, cache-sized buffer (as top_k, counts and to_sparse do).
# The variants that write the whole matrix (800 MB at 10,000) run last at each size: after
# them the machine stays busy with that memory for seconds (rounds of the next variant drifted
# from 54 to 71 ms), which the measurements that follow would pay for.
IMPLEMENTATIONS = ("reference", "native-1-blocks", "native-2-blocks", "numpy", "native-1", "native-2")


def _rounds(n: int, implementation: str) -> int:
    """Rounds per size: many for the native kernel (a round at 10,000 is about 40 ms, and this
    machine is noisy), fewer for NumPy (a second or more)."""
    if implementation.startswith("native"):
        return 15
    return 5 if n <= 3000 else 3


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("n", SIZES.kernel)
def test_dense_kernel(benchmark, n, implementation):
    if implementation == "reference" and n > SIZES.reference_max:
        pytest.skip(f"the reference runs up to {SIZES.reference_max} (FASTMATCH_BENCH_REFERENCE_MAX)")
    problem = support.dense(n)
    benchmark.group = f"dense kernel {n}x{n}"
    support.record(benchmark, implementation, str(n), problem.pairs, n_sources=n, n_targets=n)

    if implementation == "reference":
        from fastmatch.reference import evaluate

        benchmark.pedantic(
            evaluate, args=(problem.sources, problem.targets, fastmatch.Policy.default()), rounds=1, iterations=1
        )
    elif implementation == "numpy":
        outcomes = support.outputs(n)

        def run():
            NumpyBaseline(problem.interned).run(outcomes)

        benchmark.pedantic(run, rounds=_rounds(n, implementation), iterations=1, warmup_rounds=1)
        _check_against_native(problem, outcomes)
    elif implementation.endswith("-blocks"):
        workers = int(implementation.split("-")[1])
        last_rows = benchmark.pedantic(
            support.native_kernel_blocks,
            args=(problem.interned, workers),
            rounds=_rounds(n, implementation),
            iterations=1,
            warmup_rounds=1,
        )
        i0, block = last_rows
        np.testing.assert_array_equal(block, NumpyBaseline(problem.interned).run_rows(i0, n))
    else:
        workers = int(implementation.split("-")[1])
        outcomes = support.outputs(n)
        benchmark.pedantic(
            support.native_kernel,
            args=(problem.interned, workers, outcomes),
            rounds=_rounds(n, implementation),
            iterations=1,
            warmup_rounds=1,
        )
        _check_against_numpy(problem, outcomes)
    support.rate(benchmark)


def _sample_rows(n: int) -> np.ndarray:
    return np.unique(np.r_[0 : min(n, 16), np.random.default_rng(n).integers(0, n, 16), n - 1])


def _check_against_numpy(problem, outcomes):
    """The kernel's output agrees with the baseline on a sample of source classes."""
    baseline = NumpyBaseline(problem.interned)
    for i in _sample_rows(problem.n):
        np.testing.assert_array_equal(outcomes[i], baseline.run_rows(int(i), int(i) + 1)[0])


def _check_against_native(problem, outcomes):
    """The baseline's output agrees with the kernel on a sample of source classes."""
    for i in _sample_rows(problem.n):
        np.testing.assert_array_equal(outcomes[i], support.native_rows(problem.interned, int(i), int(i) + 1)[0])
