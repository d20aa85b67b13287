"""TargetIndex: a target fleet prepared once, for a scheduler's many small requests."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np

from .devices import DeviceSet
from .engine import as_device_set, worker_count, implementation, match
from .intern import NativeUnsupported, PreparedTargets
from .policy import Policy
from .result import TargetDevices, Members, Ranking


class TargetIndex:
    """Targets interned once; each request interns only its sources against them.

    ``index.top_k(sources, k)`` returns what ``match(sources, targets).top_k(k)``
    would, for a :class:`DeviceSet`, a list of records, or a single record (one
    row). Requests whose sources carry COMPATIBLE records that the policy reads
    (``direction`` ``source-offers`` or ``both``) take the full path.
    """

    def __init__(
        self,
        targets: DeviceSet | Iterable[Mapping[str, Any]],
        policy: Policy | None = None,
        workers: int = 1,
    ) -> None:
        if policy is None:
            policy = targets.policy if isinstance(targets, DeviceSet) else Policy.default()
        self.policy = policy
        self.targets = as_device_set(targets, policy)
        self.workers = worker_count(workers)
        try:
            self._prepared: PreparedTargets | None = PreparedTargets(self.targets, policy)
        except NativeUnsupported:
            self._prepared = None
        if self._prepared is not None:
            side = self._prepared.targets
            self._devices = TargetDevices(self.targets, side.class_of, side.n_classes)

    def __len__(self) -> int:
        return len(self.targets)

    def top_k(self, sources: DeviceSet | Iterable[Mapping[str, Any]] | Mapping[str, Any], k: int):
        """``(indices, scores)``, int64 (n, k): the k best available targets per source."""
        if isinstance(sources, Mapping):
            sources = [sources if "id" in sources else {"id": "request", **sources}]
        sources = as_device_set(sources, self.policy)
        prepared = self._prepared
        if prepared is None or implementation() == "python" or not prepared.supports(sources):
            return match(sources, self.targets, self.policy, workers=self.workers).top_k(k)
        from .native import _kernel, prepared_problem

        n = len(sources)
        indices = np.full((n, k), -1, dtype=np.int64)
        scores = np.full((n, k), -1, dtype=np.int64)
        if n == 0 or k == 0 or len(self.targets) == 0:
            return indices, scores
        interned = prepared.with_sources(sources)
        problem = prepared_problem(interned, self.workers)
        n_source_classes, n_target_classes = problem.shape
        outcomes = _kernel.aligned_empty((n_source_classes, n_target_classes), np.int64)
        problem.evaluate(0, n_source_classes, outcomes, self.workers)

        ranking = Ranking(self._devices, k, self.policy.exclude_same_host)
        hosts = self._devices.host_codes(sources)
        twins = self._devices.twins(sources)
        hopeless = prepared.hopeless(sources)
        for c, members in enumerate(Members(interned.sources.class_of, n_source_classes).lists):
            members = members[~hopeless[members]]
            if len(members):
                ranking.fill(members, hosts[members], twins[members], outcomes[c], indices, scores)
        return indices, scores
