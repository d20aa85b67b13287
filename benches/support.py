"""What the benchmarks share: the sizes to run, generated fleets cached on disk, and the kernel runner.

Sizes (``FASTMATCH_BENCH_SIZES``):

- ``quick`` (the default, well under a minute): dense kernel at 300, 1,000 and
  3,000 distinct descriptors per side, the reference at 300, fleets of
  100,000 devices per side;
- ``full``: dense kernel up to 10,000 x 10,000, the reference up to 1,000,
  the 1,000,000 x 1,000,000 fleet;
- a comma-separated list of dense sizes (``300,3000,10000``): those, with the
  quick preset for the rest.

``FASTMATCH_BENCH_FLEET=N`` sets the fleet's devices per side and
``FASTMATCH_BENCH_REFERENCE_MAX=N`` the largest dense size the reference runs
at. Generated fleets are kept in ``FASTMATCH_BENCH_CACHE`` (default
``.benchmarks/fleets`` at the repository's root), keyed by their arguments
and by the generator's source, so they are written once.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
import shutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

import fastmatch
import fastmatch.generate as generate

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
FLEET_DISTINCT = 2000  # distinct descriptors per side of the fleet benchmark
SEED = 0

PRESETS = {
    "quick": {"kernel": (300, 1000, 3000), "reference_max": 300, "fleet": 100_000},
    "full": {"kernel": (300, 1000, 3000, 10_000), "reference_max": 1000, "fleet": 1_000_000},
}


@dataclass(frozen=True)
class Sizes:
    kernel: tuple[int, ...]
    reference_max: int
    fleet: int


def sizes() -> Sizes:
    chosen = os.environ.get("FASTMATCH_BENCH_SIZES", "quick").strip() or "quick"
    if chosen in PRESETS:
        preset = dict(PRESETS[chosen])
    else:
        try:
            kernel = tuple(int(s) for s in chosen.split(",") if s.strip())
        except ValueError:
            message = f"FASTMATCH_BENCH_SIZES={chosen!r}: expected quick, full or a list like 1000,3000"
            raise SystemExit(message) from None
        preset = {**PRESETS["quick"], "kernel": kernel}
    if os.environ.get("FASTMATCH_BENCH_FLEET"):
        preset["fleet"] = int(os.environ["FASTMATCH_BENCH_FLEET"])
    if os.environ.get("FASTMATCH_BENCH_REFERENCE_MAX"):
        preset["reference_max"] = int(os.environ["FASTMATCH_BENCH_REFERENCE_MAX"])
    return Sizes(**preset)


# -- generated fleets, on disk once ------------------------------------------------------------
def cache_dir() -> Path:
    return Path(os.environ.get("FASTMATCH_BENCH_CACHE", ROOT / ".benchmarks" / "fleets"))


@lru_cache(maxsize=None)
def _generator_version() -> str:
    return hashlib.sha1(Path(generate.__file__).read_bytes()).hexdigest()[:10]


def fleet_files(
    n_sources: int,
    n_targets: int,
    distinct: int,
    seed: int = SEED,
    record_fraction: float | None = None,
    vm_devices: tuple[int, int] | None = None,
) -> tuple[Path, Path]:
    """``fastmatch generate`` output for these arguments, written on first use.

    ``record_fraction``: the share of target descriptors with COMPATIBLE records (default: the generator's);
    ``vm_devices``: sources grouped into VMs of (low, high) devices."""
    share = "" if record_fraction is None else f"-r{record_fraction:g}"
    groups = "" if vm_devices is None else f"-vm{vm_devices[0]}-{vm_devices[1]}"
    name = f"{n_sources}x{n_targets}-k{distinct}{share}{groups}-s{seed}"
    directory = cache_dir() / f"{name}-{_generator_version()}"
    done = directory / "complete"
    if not done.exists():
        for stale in cache_dir().glob(f"{name}-*"):  # made by another version of the generator
            shutil.rmtree(stale, ignore_errors=True)
        shares = {} if record_fraction is None else {"record_fraction": record_fraction}
        if vm_devices is not None:
            shares["vm_devices"] = vm_devices
        generate.write_fleet(directory, n_sources, n_targets, distinct, seed, **shares)
        done.write_text("")
    return directory / generate.SOURCES_FILE, directory / generate.TARGETS_FILE


def many_attribute_files(n: int, distinct: int, extra: int) -> tuple[Path, Path, Path]:
    """The ``fleet_files(n, n, distinct)`` fleet with ``extra`` more attributes, and a policy
    (TOML) that declares them, after the default ones, with the exact rule: sources, targets,
    policy. Vendor attributes that come with the mdev type: a device's value of attribute k is
    one of three, chosen by a hash of its ``mdev_type`` and k: classes stay as many as before,
    and a COMPATIBLE record that accepts another mdev type meets their rules only where the two
    types' values agree."""
    sources, targets = fleet_files(n, n, distinct)
    names = [f"vendor_{k:02d}" for k in range(extra)]
    directory = cache_dir() / f"{sources.parent.name}-extra{extra}"
    done = directory / "complete"
    if not done.exists():
        directory.mkdir(parents=True, exist_ok=True)
        for path in (sources, targets):
            with open(path, encoding="utf-8") as lines, open(directory / path.name, "w", encoding="utf-8") as out:
                for line in lines:
                    record = json.loads(line)
                    kind = record["self"].get("mdev_type", "")
                    record["self"].update(
                        (name, f"v{zlib.crc32(f'{kind}|{name}'.encode()) % 3}") for name in names
                    )
                    out.write(json.dumps(record) + "\n")
        # Declared attributes follow the default policy's seven (Policy.from_dict adds them).
        (directory / "policy.toml").write_text(
            "[attributes]\n" + "".join(f'{name} = {{ type = "string", rule = "exact" }}\n' for name in names)
        )
        done.write_text("")
    return directory / sources.name, directory / targets.name, directory / "policy.toml"


@dataclass
class Dense:
    """A dense problem: no two descriptors alike on either side."""

    n: int
    sources: fastmatch.DeviceSet
    targets: fastmatch.DeviceSet
    interned: object  # fastmatch.intern.Interned

    @property
    def pairs(self) -> int:
        return self.n * self.n


@lru_cache(maxsize=2)
def dense(n: int) -> Dense:
    from fastmatch.intern import intern

    s, t = fleet_files(n, n, n)
    sources, targets = fastmatch.load(s), fastmatch.load(t)
    interned = intern(sources, targets, fastmatch.Policy.default())
    assert interned.sources.n_classes == n and interned.targets.n_classes == n, "the dense fleet has alike descriptors"
    return Dense(n, sources, targets, interned)


@lru_cache(maxsize=1)
def outputs(n: int) -> np.ndarray:
    """The class-pair output buffer (int64 outcomes), shared by the implementations at one size and touched once."""
    from fastmatch import _kernel

    outcomes = _kernel.aligned_empty((n, n), np.int64)
    outcomes.fill(0)
    return outcomes


# -- the native kernel, without the interning ------------------------------------------------------
def native_kernel(interned, workers: int, outcomes: np.ndarray) -> None:
    """Every class pair through the native kernel, into a preallocated output.

    This follows ``fastmatch.native`` (a Problem over the interned arrays, its
    records matched once, then blocks of source classes); it is the one place
    the benchmarks touch the kernel's own API, so update it when that changes.
    """
    from fastmatch.native import PAIRS_PER_BLOCK, prepared_problem

    problem = prepared_problem(interned, workers)
    n, m = problem.shape
    step = max(1, PAIRS_PER_BLOCK // max(1, m))
    for i0 in range(0, n, step):
        i1 = min(n, i0 + step)
        problem.evaluate(i0, i1, outcomes[i0:i1], workers)


def native_kernel_blocks(interned, workers: int):
    """Every class pair through the native kernel, block after block into one reused buffer,
    as MatchResult's bounded outputs read them. Returns the last block: (i0, outcomes)."""
    from fastmatch.native import PAIRS_PER_BLOCK, _kernel, prepared_problem

    problem = prepared_problem(interned, workers)
    n, m = problem.shape
    step = max(1, PAIRS_PER_BLOCK // max(1, m))
    outcomes = _kernel.aligned_empty((step, m), np.int64)
    for i0 in range(0, n, step):
        i1 = min(n, i0 + step)
        problem.evaluate(i0, i1, outcomes[: i1 - i0], workers)
    return i0, outcomes[: i1 - i0]


def native_rows(interned, i0: int, i1: int) -> np.ndarray:
    """Source classes i0..i1 through the native kernel (for spot checks)."""
    from fastmatch.native import _kernel, prepared_problem

    problem = prepared_problem(interned, 1)
    outcomes = _kernel.aligned_empty((i1 - i0, problem.shape[1]), np.int64)
    problem.evaluate(i0, i1, outcomes, 1)
    return outcomes


def record(benchmark, implementation: str, size: str, pairs: int, **extra) -> None:
    """What plot.py and the results table read: the implementation, the size and the pairs per run."""
    benchmark.extra_info.update({"implementation": implementation, "size": size, "pairs": pairs, **extra})


def rate(benchmark) -> None:
    """After the run: pairs per second at the median time, and at the best (on a shared machine)."""
    stats = benchmark.stats.stats if benchmark.stats else None
    if stats is not None and stats.median > 0:
        benchmark.extra_info["pairs_per_second"] = benchmark.extra_info["pairs"] / stats.median
        benchmark.extra_info["pairs_per_second_best"] = benchmark.extra_info["pairs"] / stats.min


# -- end-of-session summaries ---------------------------------------------------------------------
SUMMARIES: list = []  # callables returning (title, lines), printed by conftest's pytest_terminal_summary


def add_summary(make) -> None:
    """Register ``make() -> (title, lines)``; its lines are printed at the end of the session (if any)."""
    if make not in SUMMARIES:
        SUMMARIES.append(make)


def child_env() -> dict[str, str]:
    """The environment of a ``python -m fastmatch`` child: it imports what this process imports,
    the source tree when its extension is built there."""
    in_tree = [str(SRC)] if any((SRC / "fastmatch").glob("_kernel*")) else []
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [*in_tree, os.environ.get("PYTHONPATH")])))
