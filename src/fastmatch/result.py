"""MatchResult: class-pair results, expanded to devices only as far as asked.

The engine evaluates pairs of descriptor *classes*; devices that share a class
share its results, except for what depends on the devices themselves (same
id, same host, capacity). Ranked candidates, counts and sparse pairs are
computed block by block from the class pairs with bounded memory; the dense
n x m arrays exist only when read, and only below a memory limit.
"""

from __future__ import annotations

import os
from functools import cached_property
from typing import Iterator, Protocol

import numpy as np

from .devices import DeviceSet
from .errors import FastmatchError, ResultTooLargeError
from .explain import explain_pair
from .policy import Policy
from .reasons import SAME_DEVICE, SAME_HOST, outcome_reasons, outcome_scores, reason_names
from .reference import PairEvaluator, target_versions

DEFAULT_MEMORY_LIMIT = 2 << 30
# Class-pair matrices up to this size are computed once and kept for every query.
CLASS_CACHE_LIMIT = 256 << 20


class ClassPairs(Protocol):
    """The outcomes (see fastmatch/reasons.py) of source class x target class, a block of
    source classes at a time. An outcome is the pair's score when it is compatible (>= 0),
    so consumers that rank or count read it as a score."""

    shape: tuple[int, int]

    def blocks(self) -> Iterator[tuple[int, int, np.ndarray]]:
        """``(i0, i1, outcomes)`` for source classes i0..i1; the array may be reused afterwards."""
        ...

    def row(self, c: int) -> np.ndarray:
        """The outcomes of one source class against every target class."""
        ...


class DenseClassPairs:
    """Class pairs already computed in full (the reference, or a cached native run)."""

    def __init__(self, outcomes: np.ndarray, block_rows: int = 4096) -> None:
        self.outcomes = outcomes
        self.shape = outcomes.shape
        self.block_rows = block_rows

    def blocks(self):
        for i0 in range(0, self.shape[0], self.block_rows):
            i1 = min(self.shape[0], i0 + self.block_rows)
            yield i0, i1, self.outcomes[i0:i1]

    def row(self, c: int):
        return self.outcomes[c]


def _memory_limit(value: int | None) -> int:
    if value is not None:
        return int(value)
    configured = os.environ.get("FASTMATCH_MEMORY_LIMIT", "").strip()
    if not configured:
        return DEFAULT_MEMORY_LIMIT
    # ASCII digits only: str.isdigit() also takes '²', which int() refuses, and int() refuses
    # thousands of digits; 30 digits are far beyond any memory.
    if not (configured.isascii() and configured.isdigit() and len(configured) <= 30):
        raise FastmatchError(f"FASTMATCH_MEMORY_LIMIT={configured[:40]!r}: expected a number of bytes")
    return int(configured)


class MatchResult:
    """Scores and reasons of every source -> target pair (SPEC sections 6-8).

    Prefer the outputs that never hold n x m values: :meth:`top_k`,
    :meth:`counts`, :meth:`stranded` and :meth:`to_sparse`. The dense arrays
    :attr:`compatible`, :attr:`scores` and :attr:`reasons` are built when read
    and refused above ``memory_limit`` bytes (default 2 GiB, or the
    ``FASTMATCH_MEMORY_LIMIT`` environment variable).
    """

    def __init__(
        self,
        sources: DeviceSet,
        targets: DeviceSet,
        policy: Policy,
        attributes: list[str],
        pairs: ClassPairs,
        source_class: np.ndarray,
        target_class: np.ndarray,
        memory_limit: int | None = None,
    ) -> None:
        self.sources = sources
        self.targets = targets
        self.policy = policy
        self.attributes = attributes
        self.source_class = source_class
        self.target_class = target_class
        self.memory_limit = _memory_limit(memory_limit)
        n_pairs = pairs.shape[0] * pairs.shape[1]
        if not isinstance(pairs, DenseClassPairs) and n_pairs * 8 <= CLASS_CACHE_LIMIT:
            pairs = DenseClassPairs(_gather(pairs))
        self._pairs = pairs

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.sources), len(self.targets))

    @property
    def class_shape(self) -> tuple[int, int]:
        """(source classes, target classes): how many distinct descriptors each side has."""
        return self._pairs.shape

    # -- dense arrays, on demand ----------------------------------------------------------
    def _check_dense(self, what: str, n_values: int, bytes_per_value: int) -> None:
        needed = n_values * bytes_per_value
        if needed > self.memory_limit:
            raise ResultTooLargeError(
                f"{what} would take {needed / 2**30:.1f} GiB, above the memory limit of "
                f"{self.memory_limit / 2**30:.1f} GiB; use top_k(), counts(), stranded() or to_sparse(), "
                f"or raise memory_limit"
            )

    @cached_property
    def class_scores(self) -> np.ndarray:
        """int64 (source classes, target classes), -1 where incompatible."""
        return outcome_scores(self._class_outcomes())

    @cached_property
    def class_reasons(self) -> np.ndarray:
        """uint64 (source classes, target classes): the reasons that hold for whole classes."""
        return outcome_reasons(self._class_outcomes())

    def _class_outcomes(self) -> np.ndarray:
        if not isinstance(self._pairs, DenseClassPairs):
            self._check_dense("the class-pair arrays", self._pairs.shape[0] * self._pairs.shape[1], 24)
            self._pairs = DenseClassPairs(_gather(self._pairs))
        return self._pairs.outcomes

    @cached_property
    def reasons(self) -> np.ndarray:
        """uint64 (n, m): SPEC section 8's reason mask, 0 exactly when compatible."""
        n, m = self.shape
        self._check_dense("the dense reasons and scores", n * m, 16)
        reasons = self.class_reasons[np.ix_(self.source_class, self.target_class)]
        if self.policy.exclude_same_host:
            s_host, t_host = self._host_codes
            same = (s_host[:, None] == t_host[None, :]) & (s_host[:, None] != 0)
            reasons |= np.where(same, np.uint64(SAME_HOST), np.uint64(0))
        rows = np.flatnonzero(self._same_device >= 0)
        reasons[rows, self._same_device[rows]] |= np.uint64(SAME_DEVICE)
        return reasons

    @cached_property
    def scores(self) -> np.ndarray:
        """int64 (n, m): the ranking score of SPEC section 7, -1 where incompatible."""
        reasons = self.reasons
        scores = self.class_scores[np.ix_(self.source_class, self.target_class)]
        scores[reasons != 0] = -1
        return scores

    @property
    def compatible(self) -> np.ndarray:
        """bool (n, m)."""
        return self.reasons == 0

    # -- bounded outputs ----------------------------------------------------------------
    def top_k(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k best available targets per source: ``(indices, scores)``, int64 (n, k).

        Best first, ties in target order; targets with capacity 0 are skipped;
        rows are padded with -1.
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
            raise ValueError(f"k must be an integer >= 0, got {k!r}")
        n = len(self.sources)
        indices = np.full((n, k), -1, dtype=np.int64)
        scores = np.full((n, k), -1, dtype=np.int64)
        if n == 0 or k == 0 or len(self.targets) == 0:
            return indices, scores
        ranking = self._ranking(k)
        for i0, i1, class_scores in self._pairs.blocks():
            for row, c in enumerate(range(i0, i1)):
                members = self._source_members[c]
                if len(members):
                    ranking.fill(
                        members,
                        self._host_codes[0][members],
                        self._same_device[members],
                        class_scores[row],
                        indices,
                        scores,
                    )
        return indices, scores

    def counts(self) -> np.ndarray:
        """int64 (n,): how many compatible targets with capacity each source has."""
        return self._counts(self.targets.capacities > 0)

    def stranded(self) -> np.ndarray:
        """Indices of the sources with no compatible target that has capacity."""
        return np.flatnonzero(self.counts() == 0)

    def to_sparse(self):
        """The compatible pairs as a ``scipy.sparse.csr_array`` (n, m) whose values are the scores.

        A compatible pair whose score is 0 is stored as an explicit zero.
        """
        from scipy import sparse

        n, m = self.shape
        per_row = self._counts(np.ones(m, dtype=bool))
        nnz = int(per_row.sum())
        self._check_dense(f"the sparse result ({nnz} compatible pairs)", nnz, 16)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(per_row, out=indptr[1:])
        columns = np.empty(nnz, dtype=np.int64)
        data = np.empty(nnz, dtype=np.int64)
        by_class = Members(self.target_class, self._pairs.shape[1])
        s_host, t_host = self._host_codes
        for i0, i1, class_scores in self._pairs.blocks():
            for row, c in enumerate(range(i0, i1)):
                members = self._source_members[c]
                if len(members) == 0:
                    continue
                targets = by_class.devices_of(np.flatnonzero(class_scores[row] >= 0))
                targets.sort()
                values = class_scores[row][self.target_class[targets]]
                keep = allowed(
                    s_host[members], self._same_device[members], targets, t_host, self.policy.exclude_same_host
                )
                rows, picked = np.nonzero(keep)  # row-major: each member's targets in device order
                row_sizes = np.bincount(rows, minlength=len(members))
                offsets = np.arange(len(rows)) - np.repeat(np.cumsum(row_sizes) - row_sizes, row_sizes)
                positions = indptr[members[rows]] + offsets
                columns[positions] = targets[picked]
                data[positions] = values[picked]
        return sparse.csr_array((data, columns, indptr), shape=(n, m))

    # -- one pair -----------------------------------------------------------------------
    def reason_names(self, i: int, j: int) -> list[str]:
        return reason_names(self._pair(i, j)[0], self.attributes)

    def explain(self, i: int, j: int) -> str:
        mask, score = self._pair(i, j)
        return explain_pair(
            self._evaluator,
            self.sources.ids[i],
            self.targets.ids[j],
            self.sources.descriptor(i),
            self.targets.descriptor(j),
            mask,
            score,
        )

    @cached_property
    def _evaluator(self) -> PairEvaluator:
        """The reference's view of this match, which explanations read (built once)."""
        return PairEvaluator(self.policy, self.attributes, target_versions(self.policy, self.targets))

    def _pair(self, i: int, j: int) -> tuple[int, int]:
        """One pair's reason mask and score, from its class pair and the devices themselves."""
        n, m = self.shape
        if not (0 <= i < n and 0 <= j < m):
            raise IndexError(f"pair ({i}, {j}) is outside a {n} x {m} result")
        outcome = int(self._pairs.row(int(self.source_class[i]))[self.target_class[j]])
        mask = int(outcome_reasons(np.int64(outcome))) if outcome < 0 else 0
        if self._same_device[i] == j:
            mask |= SAME_DEVICE
        host = self.sources.hosts[i]
        if self.policy.exclude_same_host and host and host == self.targets.hosts[j]:
            mask |= SAME_HOST
        return mask, outcome if mask == 0 else -1

    # -- what the device-level outputs share --------------------------------------------
    @cached_property
    def target_devices(self) -> "TargetDevices":
        return TargetDevices(self.targets, self.target_class, self._pairs.shape[1])

    @cached_property
    def _host_codes(self) -> tuple[np.ndarray, np.ndarray]:
        """Hosts as integer codes shared by both sides: 0 is the empty host, -1 a host no target is on."""
        return self.target_devices.host_codes(self.sources), self.target_devices.host

    @cached_property
    def _same_device(self) -> np.ndarray:
        """For each source, the index of the target that is the same device, or -1."""
        return self.target_devices.twins(self.sources)

    @cached_property
    def _source_members(self) -> list[np.ndarray]:
        return Members(self.source_class, self._pairs.shape[0]).lists

    def _ranking(self, k: int) -> "Ranking":
        return Ranking(self.target_devices, k, self.policy.exclude_same_host)

    def _counts(self, counted: np.ndarray) -> np.ndarray:
        """Per source, the compatible targets among ``counted`` (bool per target)."""
        n = len(self.sources)
        out = np.zeros(n, dtype=np.int64)
        if n == 0 or len(self.targets) == 0:
            return out
        n_target_classes = self._pairs.shape[1]
        per_class = np.bincount(self.target_class[counted], minlength=n_target_classes)
        s_host, t_host = self._host_codes
        exclude_host = self.policy.exclude_same_host
        # The counted targets of each host, by class, to take off sources on that host.
        host_order = np.argsort(t_host, kind="stable")
        host_order = host_order[counted[host_order] & (t_host[host_order] != 0)]
        host_bounds = np.searchsorted(t_host[host_order], np.arange(int(t_host.max(initial=0)) + 2))
        same = self._same_device
        for i0, i1, class_scores in self._pairs.blocks():
            compatible = class_scores >= 0
            base = compatible.astype(np.int64) @ per_class
            for row, c in enumerate(range(i0, i1)):
                members = self._source_members[c]
                if len(members) == 0:
                    continue
                counts = np.full(len(members), base[row], dtype=np.int64)
                if exclude_host:
                    hosts = np.maximum(s_host[members], 0)  # -1: no target on that host
                    lo, hi = host_bounds[hosts], host_bounds[hosts + 1]
                    lengths = np.where(hosts != 0, hi - lo, 0)
                    if lengths.any():
                        owner = np.repeat(np.arange(len(members)), lengths)
                        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
                        on_host = host_order[np.repeat(lo, lengths) + offsets]
                        counts -= np.bincount(
                            owner, weights=compatible[row][self.target_class[on_host]], minlength=len(members)
                        ).astype(np.int64)
                twin = same[members]
                for r in np.flatnonzero(twin >= 0):
                    j = twin[r]
                    shared_host = exclude_host and s_host[members[r]] != 0 and s_host[members[r]] == t_host[j]
                    if counted[j] and compatible[row][self.target_class[j]] and not shared_host:
                        counts[r] -= 1
                out[members] = counts
        return out


class Members:
    """The devices of each class, in device order."""

    def __init__(self, classes: np.ndarray, n_classes: int) -> None:
        self.order = np.argsort(classes, kind="stable")
        self.bounds = np.searchsorted(classes[self.order], np.arange(n_classes + 1))

    @property
    def lists(self) -> list[np.ndarray]:
        return [self.order[self.bounds[c] : self.bounds[c + 1]] for c in range(len(self.bounds) - 1)]

    def sizes(self) -> np.ndarray:
        return np.diff(self.bounds)

    def devices_of(self, classes: np.ndarray, at_most: int | None = None) -> np.ndarray:
        """The devices of these classes (the first ``at_most`` of each), class after class."""
        lo = self.bounds[classes]
        lengths = self.bounds[classes + 1] - lo
        if at_most is not None:
            lengths = np.minimum(lengths, at_most)
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return self.order[np.repeat(lo, lengths) + offsets]


class TargetDevices:
    """Device-level facts of a target fleet that rankings and counts read, built once per fleet."""

    def __init__(self, targets: DeviceSet, target_class: np.ndarray, n_classes: int) -> None:
        self.targets = targets
        self.target_class = target_class
        self.n_classes = n_classes
        self.capacities = targets.capacities
        names, self.host = targets.host_codes
        self._host_code = {name: code for code, name in enumerate(names)}

    def host_codes(self, devices: DeviceSet) -> np.ndarray:
        """The targets' codes of other devices' hosts: 0 for none, -1 for a host no target is on."""
        names, codes = devices.host_codes
        translate = np.fromiter((self._host_code.get(h, -1) for h in names), np.int64, len(names))
        return translate[codes] if len(codes) else np.zeros(0, dtype=np.int64)

    def twins(self, devices: DeviceSet) -> np.ndarray:
        """For each device, the index of the target with its id, or -1."""
        twins = np.full(len(devices), -1, dtype=np.int64)
        small, large = sorted((devices.id_set, self.targets.id_set), key=len)
        shared = small & large
        if shared:
            position = self.targets.id_index
            for i, device_id in enumerate(devices.ids):
                if device_id in shared:
                    twins[i] = position[device_id]
        return twins

    @cached_property
    def available(self) -> np.ndarray:
        return self.capacities > 0

    @cached_property
    def available_members(self) -> Members:
        """The available targets of each class, in device order."""
        return Members(np.where(self.available, self.target_class, self.n_classes), self.n_classes)

    @cached_property
    def available_count(self) -> np.ndarray:
        return self.available_members.sizes()

    @cached_property
    def busiest_host(self) -> int:
        """The most available targets on one (named) host."""
        on_hosts = self.host[self.available & (self.host != 0)]
        return int(np.bincount(on_hosts).max()) if len(on_hosts) else 0


class Ranking:
    """Top-k per source from the class scores, in bounded memory.

    For a source class, the best ``depth`` available target devices (score
    descending, then device order) are enough for each of its devices: a
    device's own host and its own id can take away at most ``depth - k`` of them.
    """

    def __init__(self, targets: TargetDevices, k: int, exclude_same_host: bool) -> None:
        self.targets = targets
        self.k = k
        self.exclude_same_host = exclude_same_host
        self.depth = k + (targets.busiest_host if exclude_same_host else 0) + 1

    def fill(
        self,
        members: np.ndarray,
        hosts: np.ndarray,
        twins: np.ndarray,
        class_scores: np.ndarray,
        indices: np.ndarray,
        scores: np.ndarray,
    ) -> None:
        """Rows ``members`` of ``indices`` and ``scores``, for sources of one class on ``hosts``."""
        targets, k, depth = self.targets, self.k, self.depth
        available_count = targets.available_count
        candidates = np.flatnonzero((class_scores >= 0) & (available_count > 0))
        if len(candidates) == 0:
            return
        ordered = candidates[np.argsort(-class_scores[candidates], kind="stable")]
        # Enough classes to hold `depth` devices, finishing the last score tie.
        reach = np.cumsum(available_count[ordered])
        last = min(int(np.searchsorted(reach, depth)), len(ordered) - 1)
        ordered = ordered[class_scores[ordered] >= class_scores[ordered[last]]]
        devices = targets.available_members.devices_of(ordered, at_most=depth)
        device_scores = class_scores[targets.target_class[devices]]
        order = np.lexsort((devices, -device_scores))[:depth]
        devices, device_scores = devices[order], device_scores[order]

        keep = allowed(hosts, twins, devices, targets.host, self.exclude_same_host)
        first = np.argsort(~keep, axis=1, kind="stable")[:, :k]
        found = np.take_along_axis(keep, first, axis=1)
        width = first.shape[1]
        indices[members, :width] = np.where(found, devices[first], -1)
        scores[members, :width] = np.where(found, device_scores[first], -1)


def allowed(
    hosts: np.ndarray, twins: np.ndarray, devices: np.ndarray, device_hosts: np.ndarray, exclude_same_host: bool
) -> np.ndarray:
    """bool (sources, devices): which of these target devices each source may go to, its class
    being compatible with theirs: not the source itself (its twin), nor, with
    ``exclude_same_host``, a device on the source's (named) host."""
    keep = np.ones((len(hosts), len(devices)), dtype=bool)
    if exclude_same_host:
        keep &= (device_hosts[devices][None, :] != hosts[:, None]) | (hosts[:, None] == 0)
    for r in np.flatnonzero(twins >= 0):
        keep[r] &= devices != twins[r]
    return keep


def _gather(pairs: ClassPairs) -> np.ndarray:
    """Every block of ``pairs`` copied into one class-pair array of outcomes."""
    outcomes = np.empty(pairs.shape, dtype=np.int64)
    for i0, i1, block in pairs.blocks():
        outcomes[i0:i1] = block
    return outcomes
