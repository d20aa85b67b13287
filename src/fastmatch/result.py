"""MatchResult: class-level results expanded to devices on demand."""

from __future__ import annotations

from functools import cached_property

import numpy as np

from .devices import DeviceSet
from .explain import explain_pair
from .policy import Policy
from .reasons import SAME_DEVICE, SAME_HOST, reason_names
from .reference import PairEvaluator, target_versions


class MatchResult:
    """Scores and reasons of every source -> target pair.

    The engine computes them per pair of descriptor *classes*
    (``class_scores[source_class[i], target_class[j]]``); what depends on the
    devices themselves (same id, same host) is applied when device-level arrays
    are asked for.
    """

    def __init__(
        self,
        sources: DeviceSet,
        targets: DeviceSet,
        policy: Policy,
        attributes: list[str],
        class_scores: np.ndarray,
        class_reasons: np.ndarray,
        source_class: np.ndarray,
        target_class: np.ndarray,
    ) -> None:
        self.sources = sources
        self.targets = targets
        self.policy = policy
        self.attributes = attributes
        self.class_scores = class_scores
        self.class_reasons = class_reasons
        self.source_class = source_class
        self.target_class = target_class

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.sources), len(self.targets))

    # -- dense device-level arrays ------------------------------------------------------
    @cached_property
    def reasons(self) -> np.ndarray:
        """uint64 (n, m): SPEC section 8's reason mask, 0 exactly when compatible."""
        reasons = self.class_reasons[np.ix_(self.source_class, self.target_class)]
        if self.policy.exclude_same_host:
            s_host, t_host = self._host_codes
            same = (s_host[:, None] == t_host[None, :]) & (s_host[:, None] != 0)
            reasons |= np.where(same, np.uint64(SAME_HOST), np.uint64(0))
        rows, cols = self._same_device_pairs
        reasons[rows, cols] |= np.uint64(SAME_DEVICE)
        return reasons

    @cached_property
    def scores(self) -> np.ndarray:
        """int64 (n, m): the ranking score of SPEC section 7, -1 where incompatible."""
        scores = self.class_scores[np.ix_(self.source_class, self.target_class)]
        scores[self.reasons != 0] = -1
        return scores

    @property
    def compatible(self) -> np.ndarray:
        """bool (n, m)."""
        return self.reasons == 0

    # -- ranking ------------------------------------------------------------------------
    def top_k(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k best available targets per source: ``(indices, scores)``, int64 (n, k).

        Best first, ties in target order; targets with capacity 0 are skipped;
        rows are padded with -1.
        """
        if not isinstance(k, (int, np.integer)) or k < 0:
            raise ValueError(f"k must be an integer >= 0, got {k!r}")
        n = len(self.sources)
        indices = np.full((n, k), -1, dtype=np.int64)
        scores = np.full((n, k), -1, dtype=np.int64)
        if n == 0 or k == 0 or len(self.targets) == 0:
            return indices, scores
        s_host, t_host = self._host_codes
        same_device = dict(zip(*self._same_device_pairs))
        available = self.targets.capacities > 0
        members = _members_by_class(self.source_class, self.class_scores.shape[0])
        for cls, rows in enumerate(members):
            if len(rows) == 0:
                continue
            class_row = self.class_scores[cls][self.target_class]
            candidates = np.flatnonzero((class_row >= 0) & available)
            order = candidates[np.argsort(-class_row[candidates], kind="stable")]
            order_hosts = t_host[order]
            for i in rows:
                keep = np.ones(len(order), dtype=bool)
                if self.policy.exclude_same_host and s_host[i] != 0:
                    keep &= order_hosts != s_host[i]
                if i in same_device:
                    keep &= order != same_device[i]
                chosen = order[keep][:k]
                indices[i, : len(chosen)] = chosen
                scores[i, : len(chosen)] = class_row[chosen]
        return indices, scores

    # -- one pair -----------------------------------------------------------------------
    def reason_names(self, i: int, j: int) -> list[str]:
        return reason_names(int(self._pair_reasons(i, j)), self.attributes)

    def explain(self, i: int, j: int) -> str:
        evaluator = PairEvaluator(self.policy, self.attributes, target_versions(self.policy, self.targets))
        mask = int(self._pair_reasons(i, j))
        score = int(self.class_scores[self.source_class[i], self.target_class[j]]) if mask == 0 else -1
        return explain_pair(
            evaluator,
            self.sources.ids[i],
            self.targets.ids[j],
            self.sources.descriptor(i),
            self.targets.descriptor(j),
            mask,
            score,
        )

    def _pair_reasons(self, i: int, j: int) -> int:
        n, m = self.shape
        if not (0 <= i < n and 0 <= j < m):
            raise IndexError(f"pair ({i}, {j}) is outside a {n} x {m} result")
        mask = int(self.class_reasons[self.source_class[i], self.target_class[j]])
        if self.sources.ids[i] == self.targets.ids[j]:
            mask |= SAME_DEVICE
        host = self.sources.hosts[i]
        if self.policy.exclude_same_host and host and host == self.targets.hosts[j]:
            mask |= SAME_HOST
        return mask

    # -- helpers ------------------------------------------------------------------------
    @cached_property
    def _host_codes(self) -> tuple[np.ndarray, np.ndarray]:
        """Hosts as integer codes shared by both sides; 0 is the empty host."""
        vocabulary = {"": 0}
        s = np.fromiter((vocabulary.setdefault(h, len(vocabulary)) for h in self.sources.hosts), np.int64, len(self.sources))
        t = np.fromiter((vocabulary.setdefault(h, len(vocabulary)) for h in self.targets.hosts), np.int64, len(self.targets))
        return s, t

    @cached_property
    def _same_device_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        target_index = {device_id: j for j, device_id in enumerate(self.targets.ids)}
        pairs = [(i, target_index[d]) for i, d in enumerate(self.sources.ids) if d in target_index]
        rows = np.array([p[0] for p in pairs], dtype=np.int64)
        cols = np.array([p[1] for p in pairs], dtype=np.int64)
        return rows, cols


def _members_by_class(classes: np.ndarray, n_classes: int) -> list[np.ndarray]:
    order = np.argsort(classes, kind="stable")
    bounds = np.searchsorted(classes[order], np.arange(n_classes + 1))
    return [order[bounds[c] : bounds[c + 1]] for c in range(n_classes)]
