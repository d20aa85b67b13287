"""TargetIndex: a target fleet prepared once, for a scheduler's many small requests."""

from __future__ import annotations

from functools import cached_property
from typing import Any, Iterable, Mapping

import numpy as np

from .blocks import TargetKeys, in_order
from .devices import DeviceSet
from .dispatch import plan_prepared, prepare
from .engine import as_device_set, match, worker_count
from .policy import Policy
from .result import DeviceRules, Int64s, MatchResult, TargetDevices, ranked
from .scores import ClassVersions


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
        self._prepared = prepared = prepare(self.targets, policy)
        # The targets in blocked order once; each request then gets its own ranges of them.
        ops = prepared.context.op_arrays
        self._keys = TargetKeys(policy, ops["op_kind"], ops["op_row"], ops["op_word"], ops["op_bit"], prepared.targets)
        if self._keys.usable:
            prepared.targets = in_order(prepared.targets, self._keys.order)
        side = prepared.targets
        self._devices = TargetDevices(self.targets, side.class_of, side.n_classes)

    def __len__(self) -> int:
        return len(self.targets)

    def __repr__(self) -> str:
        return f"<TargetIndex of {len(self.targets):,} targets, {self.workers} worker(s)>"

    def __reduce__(self) -> tuple[type[TargetIndex], tuple[DeviceSet, Policy, int]]:
        """An index pickles as its targets and policy: unpickled, they are prepared again."""
        return TargetIndex, (self.targets, self.policy, self.workers)

    def top_k(
        self, sources: DeviceSet | Iterable[Mapping[str, Any]] | Mapping[str, Any], k: int
    ) -> tuple[Int64s, Int64s]:
        """``(indices, scores)``, int64 (n, k): the k best available targets per source, as
        :meth:`fastmatch.MatchResult.top_k` gives them (a single record is one row)."""
        if isinstance(sources, Mapping):
            sources = [sources if "id" in sources else {"id": "request", **sources}]
        devices = as_device_set(sources, self.policy)
        chosen = plan_prepared(devices, self._prepared)
        interned, prepared = chosen.interned, self._prepared
        if interned is None or prepared is None:
            return match(devices, self.targets, self.policy, workers=self.workers).top_k(k)
        from .native import NativeOutputs, prepared_problem

        def fill(width: int, indices: Int64s, scores: Int64s) -> None:
            rules = DeviceRules(devices, self._devices, self.policy.exclude_same_host)
            asked = ~prepared.hopeless(devices)  # the others keep rows of -1
            problem = prepared_problem(interned, self.workers, chosen.vector)
            blocks = self._keys.blocks(interned.sources)
            if blocks is not None:
                problem.block(blocks.start, blocks.ranges)
            outputs = NativeOutputs(problem, rules, interned.sources.class_of, self.workers, asked=asked)
            outputs.top_k(width, indices, scores)

        return ranked(len(devices), len(self.targets), k, fill)

    def match(self, sources: DeviceSet | Iterable[Mapping[str, Any]]) -> MatchResult:
        """What ``match(sources, targets)`` returns, the targets' interning done once: every
        output of a :class:`MatchResult` (``top_k``, ``counts``, ``explain``, the class-pair
        arrays) for a request. Sources with a value for an attribute no target has take the
        full path (the prepared vocabularies cannot code it, and that rule fails everywhere)."""
        devices = as_device_set(sources, self.policy, "sources")
        chosen = plan_prepared(devices, self._prepared)
        interned, prepared = chosen.interned, self._prepared
        if interned is None or prepared is None or prepared.hopeless(devices).any():
            return match(devices, self.targets, self.policy, workers=self.workers)
        from .native import NativeOutputs, prepared_problem

        rules = DeviceRules(devices, self._devices, self.policy.exclude_same_host)
        problem = prepared_problem(interned, self.workers, chosen.vector)
        blocks = self._keys.blocks(interned.sources)
        visited = None
        if blocks is not None:
            problem.block(blocks.start, blocks.ranges)
            visited = blocks.pairs / max(1, problem.shape[0])
        outputs = NativeOutputs(problem, rules, interned.sources.class_of, self.workers, visited_per_row=visited)
        result = MatchResult(
            devices,
            self.targets,
            self.policy,
            interned.attributes,
            outputs,
            interned.sources.class_of,
            interned.targets.class_of,
            rules,
        )
        result.target_class_versions = self._target_class_versions
        return result

    @cached_property
    def _target_class_versions(self) -> ClassVersions:
        return ClassVersions(self.targets, self._devices.target_class, self.policy.score_version)
