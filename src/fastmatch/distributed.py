"""A match whose reductions run on a Dask cluster (``pip install 'fastmatch[dask]'``).

For fleets whose distinct descriptors take one machine's kernel too long, or too much
memory: the client reads and interns the two fleets as :func:`fastmatch.match` does,
then sends the problem (the interned classes, the blocks, and the device-level arrays
the reductions read; never a device id) to every worker once, as a task's result that Dask
can make again should every copy be lost with its workers. ``top_k``, ``counts`` and
``stranded`` split the source classes into tasks of about ``task_seconds`` each; a
worker builds the kernel's problem once per match, runs its tasks' classes through the
fused reductions, and returns only their devices' answers (``stranded``: only the
stranded devices). The client never holds more than the answer; the N x M pairs exist
nowhere. A task lost with its worker is run again by Dask elsewhere, so the answer is
complete and the same.

Everything else a :class:`DistributedResult` offers (``score_parts``, ``explain``, the
dense arrays on demand) is computed on the client, as a local result would.
"""

from __future__ import annotations

import uuid
import warnings
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import cached_property
from types import ModuleType
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, TypeVar

import numpy as np
import numpy.typing as npt

from .devices import DeviceSet
from .dispatch import plan
from .engine import as_device_set
from .errors import FastmatchError
from .intern import Interned
from .policy import Policy
from .result import Bools, DenseOutput, DeviceRules, Int64s, MatchResult, grouped, target_view

if TYPE_CHECKING:
    from distributed import Client, Future

    from . import _kernel
    from .blocks import Blocks
    from .native import NativeOutputs

T = TypeVar("T")
# What a task returns: its devices, and their rows of top_k (indices, scores) or of counts
# (the counts; with ``stranded_only`` only the stranded devices, and no counts).
TopKPart = tuple[Int64s, Int64s, Int64s]
CountsPart = tuple[Int64s, Int64s | None]

# What one worker thread gets through, for sizing tasks (measured on the generated
# 1,000,000-device fleets with 2,000 distinct descriptors, a quiet 2-core machine): the
# kernel's class pairs, and the devices whose rows the reductions write.
CLASS_PAIRS_PER_SECOND = 5e8
DEVICE_ROWS_PER_SECOND = 1e6
TASK_SECONDS = 0.1


@contextmanager
def connected(address: str, timeout: float = 10) -> Iterator[Client]:
    """A ``distributed.Client`` for ``address`` (``tcp://host:8786``, or a scheduler file
    ``*.json``), closed on leaving; ``local`` starts a ``LocalCluster`` on 127.0.0.1 (one
    single-threaded worker process per core), stopped on leaving. A scheduler that does not
    answer within ``timeout`` seconds is an error."""
    distributed = dask_module()
    with ExitStack() as stack:
        if address == "local":
            from .engine import available_cores

            cluster = stack.enter_context(
                distributed.LocalCluster(
                    n_workers=available_cores(), threads_per_worker=1, processes=True, host="127.0.0.1",
                    dashboard_address="127.0.0.1:0",
                )
            )
            client = stack.enter_context(distributed.Client(cluster))
        else:
            try:
                if address.endswith(".json"):
                    client = distributed.Client(scheduler_file=address, timeout=timeout)
                else:
                    client = distributed.Client(address, timeout=timeout)
            except (OSError, TimeoutError) as exc:
                raise FastmatchError(f"cannot reach the Dask scheduler at {address!r}: {exc}") from None
            stack.enter_context(client)
        yield client


def dask_module() -> ModuleType:
    try:
        import distributed
    except ImportError:
        raise FastmatchError("running on Dask needs dask.distributed: pip install 'fastmatch[dask]'") from None
    return distributed


def match(
    sources: DeviceSet | Iterable[Mapping[str, Any]],
    targets: DeviceSet | Iterable[Mapping[str, Any]],
    policy: Policy | None = None,
    client: Client | None = None,
    *,
    task_seconds: float = TASK_SECONDS,
    threads: int = 1,
    memory_limit: int | None = None,
) -> "DistributedResult":
    """:func:`fastmatch.match`, with ``top_k``, ``counts`` and ``stranded`` reduced on the
    cluster of ``client`` (a ``distributed.Client``); ``task_seconds`` sizes the tasks,
    ``threads`` is the kernel threads each task uses (match a worker's threads)."""
    distributed = dask_module()
    if not isinstance(client, distributed.Client):
        raise TypeError(f"client must be a distributed.Client, got {type(client).__name__}")
    if not task_seconds > 0:
        raise ValueError(f"task_seconds must be > 0, got {task_seconds!r}")
    if policy is None:
        policy = sources.policy if isinstance(sources, DeviceSet) else Policy.default()
    sources = as_device_set(sources, policy, "sources")
    targets = as_device_set(targets, policy, "targets")
    chosen = plan(sources, targets, policy)
    if not chosen.native:
        raise FastmatchError(f"a match on Dask runs the native kernel, and here it cannot: {chosen.refused}")
    from .native import blocked

    assert chosen.interned is not None, "a plan that runs the kernel holds its interned arrays"
    interned, blocks, rules = blocked(chosen.interned, sources, targets, policy)
    target_devices = rules.targets
    problem = ScatteredProblem(
        token=uuid.uuid4().hex,
        interned=interned,
        block_start=None if blocks is None else blocks.start,
        block_ranges=None if blocks is None else blocks.ranges,
        block_settled=None if blocks is None else blocks.settled,
        target_class=target_devices.target_class,
        target_host=np.ascontiguousarray(target_devices.host, dtype=np.int64),
        available=target_devices.available,
        exclude_same_host=policy.exclude_same_host,
        source_class=np.ascontiguousarray(interned.sources.class_of, dtype=np.int64),
        source_host=np.ascontiguousarray(rules.source_host, dtype=np.int64),
        source_twin=np.ascontiguousarray(rules.source_twin, dtype=np.int64),
        threads=threads,
    )
    outputs = ClusterOutputs(client, problem, rules, _class_costs(problem, blocks), task_seconds)
    return DistributedResult(
        sources, targets, policy, interned.attributes, outputs, interned.sources.class_of, interned.targets.class_of, rules, memory_limit
    )


@dataclass(frozen=True)
class ScatteredProblem:
    """What every worker holds of one match (scattered once): nothing device-named, nothing N x M."""

    token: str  # one match: a worker builds its kernel problem once per token
    interned: Interned
    block_start: Int64s | None
    block_ranges: Int64s | None
    block_settled: npt.NDArray[np.uint8] | None  # per range: its exact rules all pass (fastmatch.blocks)
    target_class: Int64s
    target_host: Int64s
    available: Bools
    exclude_same_host: bool
    source_class: Int64s
    source_host: Int64s
    source_twin: Int64s
    threads: int


def _class_costs(problem: ScatteredProblem, blocks: Blocks | None) -> npt.NDArray[np.float64]:
    """Seconds per source class, by the model above: its visited class pairs, and its devices."""
    n, m = problem.interned.sources.n_classes, problem.interned.targets.n_classes
    if blocks is None:
        pairs = np.full(n, m, dtype=np.float64)
    else:
        widths = np.concatenate([[0], np.cumsum(blocks.ranges[1::2] - blocks.ranges[0::2])])
        pairs = (widths[blocks.start[1:]] - widths[blocks.start[:-1]]).astype(np.float64)
    devices = np.bincount(problem.source_class, minlength=n)
    return pairs / CLASS_PAIRS_PER_SECOND + devices / DEVICE_ROWS_PER_SECOND


def class_ranges(costs: npt.NDArray[np.float64], task_seconds: float) -> list[tuple[int, int]]:
    """Consecutive source classes cut into ranges of about ``task_seconds`` each (a class that
    costs more is a range of its own)."""
    n = len(costs)
    if n == 0:
        return []
    done = np.cumsum(costs)
    cuts = np.searchsorted(done, np.arange(1, int(done[-1] // task_seconds) + 1) * task_seconds, side="right")
    bounds = np.unique(np.concatenate([[0], np.clip(cuts, 1, n), [n]]))
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


class ClusterOutputs:
    """The :class:`fastmatch.result.PairOutputs` of a match on Dask: ``top_k`` and ``counts`` by
    tasks on the cluster; what reads single rows or dense arrays, on the client (a local
    kernel problem built when first needed)."""

    def __init__(
        self, client: Client, problem: ScatteredProblem, rules: DeviceRules, costs: npt.NDArray[np.float64], task_seconds: float
    ) -> None:
        self.client = client
        self.problem = problem
        self.rules = rules
        self.shape = (problem.interned.sources.n_classes, problem.interned.targets.n_classes)
        self.ranges = class_ranges(costs, task_seconds)
        self._scattered: Future[ScatteredProblem] | None = None

    @property
    def scattered(self) -> Future[ScatteredProblem]:
        """The problem on every worker, sent at the first task and kept while the result lives."""
        if self._scattered is None:
            self._scattered = self._on_every_worker(self.problem, "ScatteredProblem")
        return self._scattered

    def _on_every_worker(self, value: T, name: str) -> Future[T]:
        """``value`` as a future copied once to every worker. It is the result of a task that
        holds it (``client.scatter`` would do, but scattered data that loses its last copy with
        its workers cannot be made again, and every task needing it is cancelled): a task's
        result is computed again from the scheduler's graph, so a dead worker costs a retry."""
        with warnings.catch_warnings():  # "large object in the task graph": here, on purpose
            warnings.simplefilter("ignore", UserWarning)
            future = self.client.submit(_itself, value, key=f"{name}-{uuid.uuid4().hex}", pure=False)
        self.client.replicate([future])
        return future

    def submit_top_k(self, k: int) -> list[Future[TopKPart]]:
        depth = self.rules.top_k_depth(k, self.problem.source_class, self.shape[0])
        depth_future = self._on_every_worker(depth, "fastmatch-depth")
        return [
            self.client.submit(_top_k_task, self.scattered, depth_future, i0, i1, k, key=f"fastmatch-top_k-{uuid.uuid4().hex}", pure=False)
            for i0, i1 in self.ranges
        ]

    def top_k(self, k: int, indices: Int64s, scores: Int64s) -> None:
        gather_top_k(self.client, self.submit_top_k(k), indices, scores)

    def top_k_runs(self, k: int) -> None:
        return None  # (the tasks' answers are gathered into one)

    def submit_counts(self, counted: Bools, stranded_only: bool = False) -> list[Future[CountsPart]]:
        per_class = np.bincount(self.problem.target_class[counted], minlength=self.shape[1])
        counted_future = self._on_every_worker((np.ascontiguousarray(counted).view(np.uint8), per_class), "fastmatch-counted")
        return [
            self.client.submit(
                _counts_task, self.scattered, counted_future, i0, i1, stranded_only, key=f"fastmatch-counts-{uuid.uuid4().hex}", pure=False
            )
            for i0, i1 in self.ranges
        ]

    def counts(self, counted: Bools, out: Int64s) -> None:
        for devices, found in self.client.gather(self.submit_counts(counted)):
            out[devices] = found

    def stranded(self) -> Int64s:
        parts: list[CountsPart] = self.client.gather(self.submit_counts(self.rules.available, stranded_only=True))
        return np.sort(np.concatenate([devices for devices, _ in parts] or [np.zeros(0, dtype=np.int64)]))

    # -- on the client --------------------------------------------------------------------
    @cached_property
    def local(self) -> NativeOutputs:
        from .native import NativeOutputs

        state = _Prepared(self.problem)
        return NativeOutputs(state.kernel, self.rules, self.problem.source_class, 1)

    def sparse_rows(self, indptr: Int64s, columns: Int64s, data: Int64s) -> None:
        self.local.sparse_rows(indptr, columns, data)

    def dense(self, what: DenseOutput, out: npt.NDArray[Any]) -> None:
        self.local.dense(what, out)

    def class_outcomes(self) -> Int64s:
        return self.local.class_outcomes()

    def row(self, c: int) -> Int64s:
        return self.local.row(c)

    def blocks(self) -> Iterator[tuple[int, int, Int64s]]:
        return self.local.blocks()


def gather_top_k(client: Client, futures: list[Future[TopKPart]], indices: Int64s, scores: Int64s) -> None:
    """Each task's devices' rows into ``indices`` and ``scores`` (n, k), as the tasks finish."""
    from distributed import as_completed

    future: Future[TopKPart]
    for future in as_completed(futures):
        devices, found, values = future.result()
        indices[devices] = found
        scores[devices] = values


class DistributedResult(MatchResult):
    """A :class:`fastmatch.MatchResult` whose ``top_k``, ``counts`` and ``stranded`` run on a
    Dask cluster (:func:`match`). It does not pickle (it holds a client)."""

    _outputs: ClusterOutputs

    def stranded(self) -> np.ndarray:
        """Indices of the sources with no compatible target that has capacity; each task
        returns only its stranded devices."""
        if not (len(self.sources) and len(self.targets)):
            return np.arange(len(self.sources))
        return self._outputs.stranded()

    @property
    def tasks(self) -> list[tuple[int, int]]:
        """The ranges of source classes each task takes."""
        return self._outputs.ranges

    def __repr__(self) -> str:
        return super().__repr__().replace("<MatchResult", "<DistributedResult") + f" on {len(self.tasks)} tasks"


# -- on the workers --------------------------------------------------------------------------
def _itself(value: T) -> T:
    return value



class _Prepared:
    """The kernel problem and target view of one scattered match, built where it is used: on a
    worker at its first task, on the client for single rows."""

    def __init__(self, problem: ScatteredProblem) -> None:
        from .native import prepared_problem

        self.kernel = prepared_problem(problem.interned, problem.threads)  # vector path chosen for this CPU
        if problem.block_start is not None and problem.block_ranges is not None:  # both or neither
            self.kernel.block(problem.block_start, problem.block_ranges, problem.block_settled)
        self.targets = target_view(
            problem.target_class, problem.target_host, problem.available, problem.interned.targets.n_classes, problem.exclude_same_host
        )
        self.order, self.start = grouped(problem.source_class, problem.interned.sources.n_classes)
        self.problem = problem

    def view(self, i0: int, i1: int) -> tuple[Int64s, _kernel.DeviceView]:
        """The devices of source classes i0..i1 (in class order) and the reductions' view of them,
        whose rows are those devices' positions in that list."""
        first, end = self.start[i0], self.start[i1]
        devices = self.order[first:end]
        local_start = np.clip(self.start - first, 0, end - first)
        p = self.problem
        view = self.targets.with_sources(
            np.arange(len(devices), dtype=np.int64), local_start, p.source_host[devices], p.source_twin[devices]
        )
        return devices, view


_STATES: dict[str, _Prepared] = {}  # token -> state; the last few matches a worker served


def _state(problem: ScatteredProblem) -> _Prepared:
    state = _STATES.get(problem.token)
    if state is None:
        while len(_STATES) >= 2:
            _STATES.pop(next(iter(_STATES)))
        state = _STATES[problem.token] = _Prepared(problem)
    return state


def _top_k_task(problem: ScatteredProblem, depth: Int64s, i0: int, i1: int, k: int) -> TopKPart:
    state = _state(problem)
    devices, view = state.view(i0, i1)
    indices = np.full((len(devices), k), -1, dtype=np.int64)
    scores = np.full((len(devices), k), -1, dtype=np.int64)
    if len(devices) and k:
        state.kernel.top_k(i0, i1, view, k, depth, indices, scores, problem.threads)
    return devices, indices, scores


def _counts_task(
    problem: ScatteredProblem, counted: tuple[npt.NDArray[np.uint8], Int64s], i0: int, i1: int, stranded_only: bool
) -> CountsPart:
    state = _state(problem)
    devices, view = state.view(i0, i1)
    flags, per_class = counted
    out = np.zeros(len(devices), dtype=np.int64)
    if len(devices):
        state.kernel.counts(i0, i1, view, flags, per_class, out, problem.threads)
    if stranded_only:
        return devices[out == 0], None
    return devices, out
