"""MatchResult: what users read of a match, each output computed at the cost of its answer.

The engine evaluates pairs of descriptor *classes*; devices that share a class
share its results, except for what depends on the devices themselves (the same
device, the same host, capacity): :class:`DeviceRules` holds those rules, once,
for every output. Two backends compute the outputs: the native one
(``fastmatch.native``) reduces each row of class pairs inside the kernel and
never holds more than the answer; :class:`ReferenceOutputs` reads the plain
reference's dense arrays with plain NumPy, the oracle the native one is held to.
"""

from __future__ import annotations

import os
import weakref
from functools import cached_property
from itertools import repeat
from typing import TYPE_CHECKING, Any, Callable, Iterator, Literal, Protocol, Sequence

import numpy as np
import numpy.typing as npt

from ._lines import positions_in, positions_in_texts
from .devices import DeviceSet
from .errors import FastmatchError, ResultTooLargeError, printable
from .explain import explain_pair
from .intern import kept_for_partner
from .packed import Texts, arrow_offsets
from .policy import Policy
from .reasons import SAME_DEVICE, SAME_HOST, SCORE_HAS_VERSION, outcome_reasons, outcome_scores, reason_names
from .reference import PairEvaluator, target_versions
from .scores import ClassVersions, ScoreParts, score_parts

if TYPE_CHECKING:
    import pandas
    from scipy import sparse

    from . import _kernel

Int64s = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
DenseOutput = Literal["compatible", "scores", "reasons"]
# top_k's filler: fill(width, indices, scores) writes the first width columns.
TopKFill = Callable[[int, Int64s, Int64s], None]

DEFAULT_MEMORY_LIMIT = 2 << 30
# MatchResult.to_records: its columns, in order, and their dtypes (one row per ranked candidate).
RECORD_COLUMNS: dict[str, np.dtype[Any]] = {
    name: np.dtype(kind)
    for name, kind in (
        ("source", object),
        ("source_index", np.int64),
        ("rank", np.int64),
        ("target", object),
        ("target_index", np.int64),
        ("exact", np.bool_),
        ("same_type", np.bool_),
        ("version", object),
        ("major_distance", np.uint64),
        ("minor_distance", np.uint64),
    )
}
_RECORD_BYTES = sum(dtype.itemsize for dtype in RECORD_COLUMNS.values())  # a row, objects' pointers counted
DENSE_BYTES = {"compatible": 1, "scores": 8, "reasons": 8}


class PairOutputs(Protocol):
    """What a backend computes for a :class:`MatchResult` (arrays allocated by the caller)."""

    shape: tuple[int, int]  # (source classes, target classes)

    def top_k(self, k: int, indices: Int64s, scores: Int64s) -> None: ...

    def top_k_runs(self, k: int) -> Iterator[tuple[Int64s, Int64s, Int64s]] | None:
        """``top_k`` a run of sources at a time (:meth:`MatchResult.top_k_runs`), or None
        where the backend has only the whole answer."""
        ...

    def counts(self, counted: Bools, out: Int64s) -> None: ...

    def sparse_rows(self, indptr: Int64s, columns: Int64s, data: Int64s) -> None: ...

    def dense(self, what: DenseOutput, out: npt.NDArray[Any]) -> None: ...

    def class_outcomes(self) -> Int64s:
        """The outcomes (fastmatch/reasons.py) of every class pair."""
        ...

    def row(self, c: int) -> Int64s:
        """The outcomes of one source class against every target class."""
        ...

    def blocks(self) -> Iterator[tuple[int, int, np.ndarray]]:
        """``(c0, c1, outcomes)``: the outcomes of source classes c0..c1 against every target
        class, a block at a time (the array may be reused for the next block)."""
        ...


def memory_limit_of(value: int | None) -> int:
    """``value``, or FASTMATCH_MEMORY_LIMIT, or the default: the bytes an answer may take."""
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
    """Scores and reasons of every source -> target pair (docs/model.md sections 6-8).

    Made by :func:`fastmatch.match`. Prefer the outputs that never hold n x m values:
    :meth:`top_k`, :meth:`to_records`, :meth:`to_pandas`, :meth:`counts`,
    :meth:`stranded` and :meth:`to_sparse`. The dense arrays :attr:`compatible`
    (1 byte a pair), :attr:`scores` and :attr:`reasons` (8 bytes a pair) are built
    when read and refused above ``memory_limit`` bytes (default 2 GiB, or the
    ``FASTMATCH_MEMORY_LIMIT`` environment variable).

    ``sources``, ``targets`` and ``policy`` are the match's; ``attributes`` the
    attribute order of the reason bits; ``source_class`` and ``target_class`` each
    device's descriptor class (the rows and columns of :attr:`class_scores`).
    """

    def __init__(
        self,
        sources: DeviceSet,
        targets: DeviceSet,
        policy: Policy,
        attributes: list[str],
        outputs: PairOutputs,
        source_class: Int64s,
        target_class: Int64s,
        rules: "DeviceRules",
        memory_limit: int | None = None,
    ) -> None:
        self.sources = sources
        self.targets = targets
        self.policy = policy
        self.attributes = attributes
        self.source_class = source_class
        self.target_class = target_class
        self.rules = rules
        self.memory_limit = memory_limit_of(memory_limit)
        self._outputs = outputs
        self.made_by: tuple[Any, ...] | None = None  # (match's arguments): how a pickled result is made again

    @property
    def shape(self) -> tuple[int, int]:
        """(sources, targets): the shape of the dense outputs."""
        return (len(self.sources), len(self.targets))

    @property
    def class_shape(self) -> tuple[int, int]:
        """(source classes, target classes): how many distinct descriptors each side has."""
        return self._outputs.shape

    def __reduce__(self) -> tuple[Callable[..., MatchResult], tuple[Any, ...]]:
        """A result pickles as the match that makes it (the kernel's arrays are not data to
        keep): unpickled, it is that match again, with equal answers."""
        if self.made_by is None:
            raise TypeError("this MatchResult was not made by fastmatch.match and cannot be pickled")
        from .engine import rematch

        return rematch, self.made_by

    def __repr__(self) -> str:
        (n, m), (cn, cm) = self.shape, self.class_shape
        return f"<MatchResult {n:,} sources x {m:,} targets ({cn:,} x {cm:,} descriptor classes)>"

    # -- dense arrays, on demand ----------------------------------------------------------
    def _check_dense(self, what: str, n_values: int, bytes_per_value: int) -> None:
        needed = n_values * bytes_per_value
        if needed > self.memory_limit:
            raise ResultTooLargeError(
                f"{what} would take {needed / 2**30:.1f} GiB, above the memory limit of "
                f"{self.memory_limit / 2**30:.1f} GiB; use top_k(), counts(), stranded() or to_sparse(), "
                f"or raise memory_limit"
            )

    def _dense(self, what: DenseOutput) -> npt.NDArray[Any]:
        n, m = self.shape
        self._check_dense(f"the dense {what}", n * m, DENSE_BYTES[what])
        out = np.empty((n, m), dtype=np.uint8 if what == "compatible" else np.int64)
        if n and m:
            self._outputs.dense(what, out)
        return out

    @cached_property
    def class_scores(self) -> Int64s:
        """int64 (source classes, target classes), -1 where incompatible."""
        return outcome_scores(self._class_outcomes)

    @cached_property
    def class_reasons(self) -> npt.NDArray[np.uint64]:
        """uint64 (source classes, target classes): the reasons that hold for whole classes."""
        return outcome_reasons(self._class_outcomes)

    @cached_property
    def _class_outcomes(self) -> Int64s:
        cn, cm = self.class_shape
        self._check_dense("the class-pair arrays", cn * cm, 16)
        return self._outputs.class_outcomes()

    @cached_property
    def reasons(self) -> npt.NDArray[np.uint64]:
        """uint64 (n, m): docs/model.md section 8's reason mask, 0 exactly when compatible."""
        return self._dense("reasons").view(np.uint64)

    @cached_property
    def scores(self) -> Int64s:
        """int64 (n, m): the ranking score of docs/model.md section 7, -1 where incompatible."""
        return self._dense("scores")

    @cached_property
    def compatible(self) -> Bools:
        """bool (n, m)."""
        return self._dense("compatible").view(bool)

    # -- bounded outputs ----------------------------------------------------------------
    def top_k(self, k: int) -> tuple[Int64s, Int64s]:
        """The k best available targets per source: ``(indices, scores)``, int64 (n, k).

        Best first, ties in target order; targets with capacity 0 are skipped;
        rows are padded with -1.
        """
        return ranked(len(self.sources), len(self.targets), k, self._outputs.top_k, self.memory_limit)

    def top_k_runs(self, k: int) -> Iterator[tuple[Int64s, Int64s, Int64s]]:
        """:meth:`top_k` a run of sources at a time, for what reads every source's candidates
        once and keeps less (``fastmatch.cli.Ranking``: a fleet's distinct rankings): each
        run is ``(sources, indices, scores)``, the candidates of the sources listed (device
        indices), in arrays the next run may reuse. Every source is in one run. Where the
        kernel answers, no (n, k) array is made; the reference and a Dask cluster answer in
        one run of every source."""
        n, m = self.shape
        width = min(checked_k(k), m)
        runs = self._outputs.top_k_runs(width) if n and width else None
        if runs is None:
            yield (np.arange(n, dtype=np.int64), *self.top_k(k))
            return
        for sources, indices, scores in runs:
            yield (sources, *padded(indices, scores, k))

    def counts(self) -> Int64s:
        """int64 (n,): how many compatible targets with capacity each source has."""
        return self._counts(self.rules.available)

    def stranded(self) -> Int64s:
        """Indices of the sources with no compatible target that has capacity."""
        return np.flatnonzero(self.counts() == 0)

    def to_sparse(self) -> sparse.csr_array:
        """The compatible pairs as a ``scipy.sparse.csr_array`` (n, m), int64.

        The stored entries are exactly the compatible pairs (available or not), and
        each holds its score **plus one**: every stored value is >= 1, so a
        compatible pair whose score is 0 survives ``toarray()`` and
        ``eliminate_zeros()``, and a 0 always means incompatible. ``m.data - 1``
        gives the scores back (comparable among the targets of one source, as
        every score). Needs SciPy (``pip install 'fastmatch[sparse]'``).
        """
        try:
            from scipy import sparse
        except ImportError:
            raise FastmatchError("to_sparse() needs SciPy: pip install 'fastmatch[sparse]'") from None

        n, m = self.shape
        per_row = self._counts(np.ones(m, dtype=bool))
        nnz = int(per_row.sum())
        self._check_dense(f"the sparse result ({nnz} compatible pairs)", nnz, 16)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(per_row, out=indptr[1:])
        columns = np.empty(nnz, dtype=np.int64)
        data = np.empty(nnz, dtype=np.int64)
        if nnz:
            self._outputs.sparse_rows(indptr, columns, data)
        return sparse.csr_array((data, columns, indptr), shape=(n, m))

    def score_parts(self, sources: npt.ArrayLike, targets: npt.ArrayLike, scores: npt.ArrayLike) -> ScoreParts:
        """The parts that decided ``scores`` (see :mod:`fastmatch.scores`), for the pairs
        (``sources``, ``targets``) of device indices; the three broadcast together, so the
        parts of ``top_k`` are ``score_parts(np.arange(n)[:, None], *result.top_k(k))``.
        Where a score is -1 (incompatible, or top_k's padding) the parts say so."""
        sources, targets, scores = np.broadcast_arrays(
            np.asarray(sources, dtype=np.int64), np.asarray(targets, dtype=np.int64), np.asarray(scores, dtype=np.int64)
        )
        valid = scores >= 0

        def classes(device_class: Int64s, devices: Int64s) -> Int64s:
            """Each pair's class where its score is valid, class 0 elsewhere (masked after)."""
            picked: Int64s = device_class[np.where(valid, devices, 0)] if valid.any() else np.zeros(valid.shape, np.int64)
            return picked

        source_versions, target_versions = self._class_versions
        return score_parts(
            source_versions,
            target_versions,
            self.policy.prefer,
            classes(self.source_class, sources),
            classes(self.target_class, targets),
            scores,
        )

    def version_origins(self) -> np.ndarray:
        """int64 (n,): a code per source device, equal for sources whose version distances are
        measured from the same version (or that have none): with equal scores to the same
        targets, two sources with one code have equal score parts."""
        versions = self._class_versions[0]
        if len(versions.present) == 0:
            return np.zeros(len(self.sources), dtype=np.int64)
        _, codes = np.unique(np.stack([versions.present, versions.major, versions.minor]), axis=1, return_inverse=True)
        return codes.reshape(-1)[self.source_class]

    @cached_property
    def _class_versions(self) -> tuple[ClassVersions, ClassVersions]:
        return ClassVersions(self.sources, self.source_class, self.policy.score_version), self.target_class_versions

    @cached_property
    def target_class_versions(self) -> ClassVersions:
        """The targets' ``score_version`` per class; a :class:`TargetIndex` hands every result
        its own, made once per fleet (a request would otherwise read every target class)."""
        return ClassVersions(self.targets, self.target_class, self.policy.score_version)

    def to_records(self, k: int) -> dict[str, npt.NDArray[Any]]:
        """The ranked candidates of :meth:`top_k` as a table of columns: a dict from column
        name to a 1-d NumPy array, one entry per candidate (sources with none have no row:
        :meth:`stranded` lists them), in source order, best first. ``pandas.DataFrame``,
        polars and pyarrow take it as it is; ``numpy.rec.fromarrays(table.values(),
        names=list(table))`` makes row records of it. The columns (:data:`RECORD_COLUMNS`):

        - ``source``, ``target``: the device ids (Python ``str``, object arrays);
        - ``source_index``, ``target_index``: their positions, as in the other outputs;
        - ``rank``: 1 for the source's best available target, 2 for the next, ...;
        - ``exact``, ``same_type``, ``version``, ``major_distance``, ``minor_distance``:
          the parts that decided the rank, as :meth:`score_parts` gives them
          (docs/model.md section 7). ``version`` is the target's ``score_version``
          spelled canonically (``1.2`` is ``1.2.0``), ``None`` where either side lacks
          one; the distances (uint64) are ``|T.major - S.major|`` and
          ``|T.minor - S.minor|`` with ``prefer = "closest"``, and 0 where they do not
          apply (no version, or ``prefer = "newest"``).

        The kernel's int64 score is not a column: its number means something only beside
        the other targets of the same source, and past 2^53 JSON tools round it.
        """
        return self._table(k)[0]

    def to_pandas(self, k: int) -> pandas.DataFrame:
        """:meth:`to_records` as a ``pandas.DataFrame`` with the same columns; the distances
        are nullable ``UInt64`` columns, ``<NA>`` where they do not apply. Needs pandas
        (``pip install 'fastmatch[pandas]'``)."""
        try:
            import pandas
        except ImportError:
            raise FastmatchError("to_pandas() needs pandas: pip install 'fastmatch[pandas]'") from None
        table, has_version = self._table(k)
        columns: dict[str, Any] = dict(table)
        not_applicable = ~has_version if self.policy.prefer == "closest" else np.ones(len(has_version), dtype=bool)
        for name in ("major_distance", "minor_distance"):
            columns[name] = pandas.arrays.IntegerArray(table[name], not_applicable.copy())
        return pandas.DataFrame(columns)

    def _table(self, k: int) -> tuple[dict[str, npt.NDArray[Any]], Bools]:
        """:meth:`to_records`'s columns, and which candidates have a version to compare.
        Column by column: an array of structured rows holding objects costs NumPy a slow
        per-row fill before anything is written (0.55 s for 500,000 rows)."""
        indices, scores = self.top_k(k)
        rows, columns = np.nonzero(indices >= 0)
        self._check_dense(f"to_records({k}) ({len(rows):,} candidates)", len(rows), _RECORD_BYTES)
        targets = indices[rows, columns]
        ranked_scores = scores[rows, columns]
        parts = self.score_parts(rows, targets, ranked_scores)
        has_version: Bools = ranked_scores & SCORE_HAS_VERSION != 0
        versions = self._target_version_text[self.target_class[targets]]  # a copy: ours to change
        versions[~has_version] = None
        table: dict[str, npt.NDArray[Any]] = {
            "source": np.asarray(self.sources.ids, dtype=object)[rows],
            "source_index": rows.astype(np.int64, copy=False),
            "rank": (columns + 1).astype(np.int64, copy=False),
            "target": np.asarray(self.targets.ids, dtype=object)[targets],
            "target_index": targets,
            "exact": parts.exact,
            "same_type": parts.same_type,
            "version": versions,
            "major_distance": parts.major_distance,
            "minor_distance": parts.minor_distance,
        }
        return table, has_version

    @cached_property
    def _target_version_text(self) -> npt.NDArray[np.object_]:
        """Per target class, its ``score_version`` spelled canonically, as every output shows
        it (one spelling for equal versions, so classes and devices agree); None where absent."""
        versions = self._class_versions[1].version
        texts = np.empty(len(versions), dtype=object)
        texts[:] = [v.canonical if v is not None else None for v in versions]
        return texts

    def _counts(self, counted: Bools) -> Int64s:
        out = np.zeros(len(self.sources), dtype=np.int64)
        if len(self.sources) and len(self.targets):
            self._outputs.counts(counted, out)
        return out

    def compatible_counts(self) -> np.ndarray:
        """int64 (n,): how many compatible targets each source has, those with capacity 0 included."""
        return self._counts(np.ones(len(self.targets), dtype=bool))

    def reason_counts(self) -> dict[str, int]:
        """How many incompatible pairs each reason name makes fail, most first (a pair can
        fail for several reasons, so the counts may add up to more than the pairs).

        Never n x m: each class pair's reasons count once for all its device pairs (its
        source class's devices times its target class's), and the device rules count by
        themselves (same device: the sources that are also targets; same host: sources
        times targets on each host). The class pairs are all evaluated, a block at a time.
        """
        source_sizes = np.bincount(self.source_class, minlength=self.class_shape[0]).astype(np.int64)
        target_sizes = np.bincount(self.target_class, minlength=self.class_shape[1]).astype(np.int64)
        pairs_by_mask: dict[int, int] = {}
        if len(self.sources) and len(self.targets):
            for c0, _, outcomes in self._outputs.blocks():
                rows, columns = np.nonzero(outcomes < 0)
                if len(rows) == 0:
                    continue
                masks = outcome_reasons(outcomes[rows, columns])
                weights = source_sizes[c0 + rows] * target_sizes[columns]
                order = np.argsort(masks, kind="stable")
                masks, weights = masks[order], weights[order]
                starts = np.flatnonzero(np.r_[True, masks[1:] != masks[:-1]])
                for mask, pairs in zip(masks[starts].tolist(), np.add.reduceat(weights, starts).tolist()):
                    pairs_by_mask[mask] = pairs_by_mask.get(mask, 0) + pairs
        counts: dict[str, int] = {}
        for mask, pairs in pairs_by_mask.items():
            for name in reason_names(mask, self.attributes):
                counts[name] = counts.get(name, 0) + pairs
        rules = self.rules
        same_device = int((rules.source_twin >= 0).sum())
        if same_device:
            counts["SAME_DEVICE"] = same_device
        if rules.exclude_same_host:
            hosts = rules.targets.host
            per_host = np.bincount(hosts, minlength=int(hosts.max(initial=0)) + 1)
            on_target_hosts = rules.source_host[rules.source_host > 0]  # 0: no host, -1: no target there
            same_host = int(per_host[on_target_hosts].sum())
            if same_host:
                counts["SAME_HOST"] = same_host
        return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))

    # -- one pair -----------------------------------------------------------------------
    def reason_names(self, i: int, j: int) -> list[str]:
        """The reasons source ``i`` cannot go to target ``j``, by name: the failing attributes
        in :attr:`attributes` order, then the fixed reasons (``SAME_HOST``, ``NO_RECORD``, ...;
        docs/model.md section 8). Empty exactly when the pair is compatible."""
        return reason_names(self._pair(i, j)[0], self.attributes)

    def explain(self, i: int, j: int) -> str:
        """Why source ``i`` can or cannot go to target ``j``, and where ``j`` ranks among the
        source's candidates, in words an operator reads."""
        text: str = self.explanation(i, j)["text"]
        return text

    def explanation(self, i: int, j: int) -> dict[str, Any]:
        """:meth:`explain` as a JSON-safe dict: ``source``, ``target``, ``compatible``,
        ``reasons`` (names), ``score`` (its parts, fastmatch.scores; None when incompatible),
        ``rank`` among the source's available candidates (None when not one of them),
        ``candidates`` (how many it has), ``above``/``below`` (the neighbouring candidates:
        ``{"target", "why"}``, why the upper one ranks higher), and ``text``."""
        mask, score = self._pair(i, j)
        lines = [
            explain_pair(
                self._evaluator,
                self.sources.ids[i],
                self.targets.ids[j],
                self.sources.descriptor(i),
                self.targets.descriptor(j),
                mask,
            )
        ]
        row = self.row_scores(i)
        available = np.flatnonzero((row >= 0) & self.rules.available)
        order = available[np.lexsort((available, -row[available]))]  # docs/model.md section 7: score, then input order
        at = np.flatnonzero(order == j)
        rank = int(at[0]) + 1 if len(at) else None
        neighbours = {}
        if rank is not None:
            for key, n in (("above", rank - 2), ("below", rank)):
                if 0 <= n < len(order):
                    neighbours[key] = int(order[n])
        shown = [j, *neighbours.values()]
        parts = self.score_parts(i, np.array(shown), row[shown])
        if score >= 0:
            lines.append(f"  score: {parts.words(0)}")
            if rank is None:
                lines.append("  not ranked: the target has capacity 0")
            else:
                lines.append(f"  rank {rank} of the source's {len(order)} available candidate{'s' if len(order) > 1 else ''}")
        explained: dict[str, Any] = {}
        for k, (key, n) in enumerate(neighbours.items(), start=1):
            upper, lower = (k, 0) if key == "above" else (0, k)
            why = parts.why_above(upper, lower)
            explained[key] = {"target": self.targets.ids[n], "why": why}
            who = printable(self.targets.ids[n])
            lines.append(f"  {who} ranks above it: {why}" if key == "above" else f"  it ranks above {who}: {why}")
        return {
            "source": self.sources.ids[i],
            "target": self.targets.ids[j],
            "compatible": mask == 0,
            "reasons": reason_names(mask, self.attributes),
            "score": parts.json(0),
            "rank": rank,
            "candidates": len(order),
            "above": explained.get("above"),
            "below": explained.get("below"),
            "text": "\n".join(lines),
        }

    def row_scores(self, i: int) -> Int64s:
        """int64 (m,): source ``i``'s score against every target, -1 where incompatible (the
        device rules included); the n x m matrix is never built."""
        outcomes = self._outputs.row(int(self.source_class[i]))[self.target_class]
        scores = np.where(outcomes >= 0, outcomes, np.int64(-1))
        twin = int(self.rules.source_twin[i])
        if twin >= 0:
            scores[twin] = -1
        host = int(self.rules.source_host[i])
        if self.rules.exclude_same_host and host > 0:
            scores[self.rules.targets.host == host] = -1
        return scores

    @cached_property
    def _evaluator(self) -> PairEvaluator:
        """The reference's view of this match, which explanations read (built once)."""
        return PairEvaluator(self.policy, self.attributes, target_versions(self.policy, self.targets))

    def _pair(self, i: int, j: int) -> tuple[int, int]:
        """One pair's reason mask and score, from its class pair and the devices themselves."""
        n, m = self.shape
        if not (0 <= i < n and 0 <= j < m):
            raise IndexError(f"pair ({i}, {j}) is outside a {n} x {m} result")
        outcome = int(self._outputs.row(int(self.source_class[i]))[self.target_class[j]])
        mask = int(outcome_reasons(np.int64(outcome))) if outcome < 0 else 0
        mask |= self.rules.pair_reasons(i, j)
        return mask, outcome if mask == 0 else -1


def checked_k(k: int) -> int:
    """``k`` of a top-k, an int >= 0 (a bool is refused)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ValueError(f"k must be an integer >= 0, got {k!r}")
    return int(k)


def ranked(n: int, m: int, k: int, fill: TopKFill, memory_limit: int | None = None) -> tuple[Int64s, Int64s]:
    """``(indices, scores)`` of top-k, int64 (n, k) padded with -1, ``fill(width, indices, scores)``
    filling the first ``width`` columns (no more than the m targets: they are never all taken)."""
    memory_limit = memory_limit_of(memory_limit)
    k = checked_k(k)
    if n * k * 16 > memory_limit:
        raise ResultTooLargeError(
            f"top_k({k}) for {n:,} sources would take {n * k * 16 / 2**30:.1f} GiB, above the memory limit of "
            f"{memory_limit / 2**30:.1f} GiB; ask for fewer (there are {m:,} targets)"
        )
    width = min(k, m)
    indices = np.full((n, width), -1, dtype=np.int64)
    scores = np.full((n, width), -1, dtype=np.int64)
    if n and width:
        fill(width, indices, scores)
    return padded(indices, scores, k)


def padded(indices: Int64s, scores: Int64s, k: int) -> tuple[Int64s, Int64s]:
    """Top-k rows of fewer than ``k`` columns (no more candidates than targets) padded with -1
    to ``k``; rows of ``k`` as they are."""
    short = k - indices.shape[1]
    if short <= 0:
        return indices, scores
    pad = np.full((len(indices), short), -1, dtype=np.int64)
    return np.hstack([indices, pad]), np.hstack([scores, pad])


class TargetDevices:
    """The device-level facts of a target fleet that every output reads, built once per fleet.

    The fleet itself is held weakly: these facts are kept with two sets' interning
    (``fastmatch.native.device_rules``), which must not keep the sources' partner alive."""

    def __init__(self, targets: DeviceSet, target_class: Int64s, n_classes: int) -> None:
        self._targets = weakref.ref(targets)
        self.target_class = np.ascontiguousarray(target_class, dtype=np.int64)
        self.n_classes = n_classes
        self.capacities = targets.capacities
        self.available = self.capacities > 0
        self.host_names, self.host = targets.host_codes
        self._views: dict[bool, _kernel.DeviceView] = {}  # exclude_same_host -> its view

    @property
    def targets(self) -> DeviceSet:
        """The fleet (alive while a result or an index of it is)."""
        targets = self._targets()
        assert targets is not None, "the target fleet of these facts is gone"
        return targets

    def host_codes(self, devices: DeviceSet) -> Int64s:
        """The targets' codes of other devices' hosts: 0 for none, -1 for a host no target is on."""
        names, codes = devices.host_codes
        if few_among(names, self.host_names):
            return np.fromiter(map(self.host_code_of.get, names, repeat(-1)), np.int64, len(names))[codes]
        # A whole fleet: natively, and kept for the same two sets' next match.
        return kept_for_partner(devices, self.targets, "hosts", None, lambda: positions_in(names, self.host_names)[codes])

    def twins(self, devices: DeviceSet) -> Int64s:
        """For each device, the index of the target with its id, or -1."""
        return twins(devices, self.targets)

    @cached_property
    def host_code_of(self) -> dict[str, int]:
        """Host name -> its code (the empty host: 0)."""
        return {name: code for code, name in enumerate(self.host_names)}

    @cached_property
    def available_count(self) -> int:
        """Targets with capacity (counted once: a request's top_k reads it)."""
        return int(np.count_nonzero(self.available))

    @cached_property
    def available_per_host(self) -> Int64s:
        """Available targets on each host code (code 0, no host, counts none)."""
        per_host = np.bincount(self.host[self.available], minlength=int(self.host.max(initial=0)) + 1)
        per_host[0] = 0
        return per_host

    def counted_per_class(self, counted: Bools) -> Int64s:
        return np.bincount(self.target_class[counted], minlength=self.n_classes)

    def view(self, exclude_same_host: bool) -> _kernel.DeviceView:
        """The native reductions' view of these targets (``_kernel.DeviceView``)."""
        cached = self._views
        if exclude_same_host not in cached:
            cached[exclude_same_host] = target_view(
                self.target_class, self.host, self.available, self.n_classes, exclude_same_host
            )
        return cached[exclude_same_host]


def few_among(asked: Sequence[str], among: Sequence[str]) -> bool:
    """Whether to look ``asked`` up in a dict of ``among`` kept for every call (a request's
    few devices), rather than in a table of ``among`` built for this one (a whole fleet)."""
    return len(asked) * 64 < len(among)


def twins(devices: DeviceSet, targets: DeviceSet) -> Int64s:
    """For each device, the index of the target with its id, or -1."""
    if few_among(devices.ids, targets.ids):
        return np.fromiter(map(targets.id_index.get, devices.ids, repeat(-1)), np.int64, len(devices))
    # Natively (no set or dict of a million ids), and kept for the same two sets' next match.
    return kept_for_partner(devices, targets, "twins", None, lambda: id_positions(devices.ids, targets.ids))


def id_positions(ids: Sequence[str], among: Sequence[str]) -> Int64s:
    """Each id's position among ``among`` (the last equal one), or -1, natively: ids kept packed
    (``fastmatch.packed.Texts``, a columnar fleet's) are compared as bytes, without a str each."""
    if isinstance(ids, Texts) or isinstance(among, Texts):
        found: Int64s = positions_in_texts(*arrow_offsets(ids), *arrow_offsets(among))
    else:
        found = positions_in(ids, among)
    return found


def target_view(
    target_class: np.ndarray, host: np.ndarray, available: np.ndarray, n_classes: int, exclude_same_host: bool
) -> _kernel.DeviceView:
    """``_kernel.DeviceView.for_targets`` of a target fleet's device arrays (as
    :class:`TargetDevices` holds them), wherever they are: a Dask worker builds its own."""
    from . import _kernel

    available_order, available_start = grouped(np.where(available, target_class, n_classes), n_classes)
    class_order, class_start = grouped(target_class, n_classes)
    host_order, host_start = grouped(host, int(host.max(initial=0)) + 1)
    return _kernel.DeviceView.for_targets(
        target_class,
        np.ascontiguousarray(host, dtype=np.int64),
        available_order,
        available_start,
        class_order,
        class_start,
        host_order,
        host_start,
        exclude_same_host,
    )


def grouped(keys: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """``(order, start)``: the positions whose key is g are ``order[start[g]:start[g + 1]]``,
    in position order (keys outside 0..n_groups - 1 belong to no group)."""
    from . import _kernel

    order: np.ndarray
    start: np.ndarray
    order, start = _kernel.group_positions(np.ascontiguousarray(keys, dtype=np.int64), n_groups)
    return order, start


class DeviceRules:
    """What depends on the devices of a match rather than their classes (docs/model.md sections 6-7):
    a source never goes to itself (``SAME_DEVICE``), nor, with ``exclude_same_host``, to a
    target on its own named host (``SAME_HOST``); ranked candidates and counts skip targets
    with capacity 0. Every output, the reference's and ``explain`` apply these rules here."""

    def __init__(self, sources: DeviceSet, targets: TargetDevices, exclude_same_host: bool) -> None:
        self.targets = targets
        self.exclude_same_host = exclude_same_host
        self.source_host = targets.host_codes(sources)
        self.source_twin = targets.twins(sources)
        # For every source asked (no ``asked``): the last source classes' view and the most
        # targets each class's devices exclude, kept with those classes (a kept match reads them again).
        self._whole_view: tuple[Int64s, int, tuple[Int64s, Int64s, _kernel.DeviceView]] | None = None
        self._class_taken: tuple[Int64s, int, Int64s] | None = None

    @property
    def available(self) -> Bools:
        return self.targets.available

    def pair_reasons(self, i: int, j: int) -> int:
        mask = SAME_DEVICE if self.source_twin[i] == j else 0
        host = self.source_host[i]
        if self.exclude_same_host and host > 0 and host == self.targets.host[j]:
            mask |= SAME_HOST
        return mask

    def dense_reasons(self) -> npt.NDArray[np.uint64]:
        """uint64 (n, m): the reason bits these rules add to every pair."""
        n, m = len(self.source_host), len(self.targets.host)
        reasons = np.zeros((n, m), dtype=np.uint64)
        if self.exclude_same_host:
            same = (self.source_host[:, None] == self.targets.host[None, :]) & (self.source_host[:, None] > 0)
            reasons[same] |= np.uint64(SAME_HOST)
        rows = np.flatnonzero(self.source_twin >= 0)
        reasons[rows, self.source_twin[rows]] |= np.uint64(SAME_DEVICE)
        return reasons

    def top_k_depth(self, k: int, source_class: Int64s, n_classes: int, members: Bools | None = None) -> Int64s:
        """Per source class, the candidates to rank so that each of its devices still has k after
        its own exclusions take theirs away (its host's available targets, and itself)."""
        kept = self._class_taken
        if members is None and kept is not None and kept[0] is source_class and kept[1] == n_classes:
            class_taken = kept[2]
        else:
            class_taken = self._class_taken_of(source_class, n_classes, members)
            if members is None:
                self._class_taken = (source_class, n_classes, class_taken)
        return np.minimum(class_taken + k, self.targets.available_count)

    def _class_taken_of(self, source_class: Int64s, n_classes: int, members: Bools | None) -> Int64s:
        """Per source class, the most available targets one of its devices (``members``) excludes."""
        taken = np.zeros(len(self.source_host), dtype=np.int64)
        if self.exclude_same_host:
            hosts = self.source_host
            on_host = self.targets.available_per_host
            taken += np.where(hosts > 0, on_host[np.clip(hosts, 0, len(on_host) - 1)], 0)
        twins = self.source_twin
        taken += (twins >= 0) & self.available[np.maximum(twins, 0)]
        class_taken = np.zeros(n_classes, dtype=np.int64)
        asked = np.ones(len(taken), dtype=bool) if members is None else members
        np.maximum.at(class_taken, source_class[asked], taken[asked])
        return class_taken

    def view(self, source_class: Int64s, n_classes: int, asked: Bools | None = None) -> _kernel.DeviceView:
        """The native view of these rules for sources in classes ``source_class`` (only the
        ``asked`` ones, when given: the others' rows are left as they are)."""
        return self._view(source_class, n_classes, asked)[2]

    def source_groups(self, source_class: Int64s, n_classes: int) -> tuple[Int64s, Int64s]:
        """``(order, start)`` of :meth:`view`'s sources (all of them): class c's devices are
        ``order[start[c]:start[c + 1]]``, in device order."""
        order, start, _ = self._view(source_class, n_classes, None)
        return order, start

    def _view(self, source_class: Int64s, n_classes: int, asked: Bools | None) -> tuple[Int64s, Int64s, _kernel.DeviceView]:
        kept = self._whole_view
        if asked is None and kept is not None and kept[0] is source_class and kept[1] == n_classes:
            return kept[2]
        keys = source_class if asked is None else np.where(asked, source_class, n_classes)
        order, start = grouped(keys, n_classes)
        view = self.targets.view(self.exclude_same_host).with_sources(order, start, self.source_host, self.source_twin)
        if asked is None:
            self._whole_view = (source_class, n_classes, (order, start, view))
        return order, start, view


class ReferenceOutputs:
    """Every output from the reference's dense outcomes (each device its own class), in plain
    NumPy: the independent answer the native reductions are tested against."""

    def __init__(self, outcomes: Int64s, rules: DeviceRules) -> None:
        self.outcomes = outcomes
        self.shape = outcomes.shape
        self.rules = rules

    @cached_property
    def _reasons(self) -> npt.NDArray[np.uint64]:
        return outcome_reasons(self.outcomes) | self.rules.dense_reasons()

    @cached_property
    def _scores(self) -> Int64s:
        return np.where(self._reasons == 0, self.outcomes, np.int64(-1))

    def top_k(self, k: int, indices: Int64s, scores: Int64s) -> None:
        available = self.rules.available
        for i, row in enumerate(self._scores):
            candidates = np.flatnonzero((row >= 0) & available)
            best = candidates[np.lexsort((candidates, -row[candidates]))][:k]
            indices[i, : len(best)] = best
            scores[i, : len(best)] = row[best]

    def top_k_runs(self, k: int) -> None:
        return None  # (the dense answer is at hand: one run of every source)

    def counts(self, counted: Bools, out: Int64s) -> None:
        out[:] = ((self._scores >= 0) & counted[None, :]).sum(axis=1)

    def sparse_rows(self, indptr: Int64s, columns: Int64s, data: Int64s) -> None:
        rows, cols = np.nonzero(self._scores >= 0)
        columns[:] = cols
        data[:] = self._scores[rows, cols] + 1  # MatchResult.to_sparse: score + 1, never a stored 0

    def dense(self, what: DenseOutput, out: npt.NDArray[Any]) -> None:
        if what == "compatible":
            out[:] = self._reasons == 0
        elif what == "scores":
            out[:] = self._scores
        else:
            out[:] = self._reasons.view(np.int64)

    def class_outcomes(self) -> Int64s:
        return self.outcomes

    def row(self, c: int) -> Int64s:
        row: Int64s = self.outcomes[c]
        return row

    def blocks(self) -> Iterator[tuple[int, int, Int64s]]:
        yield 0, self.shape[0], self.outcomes
