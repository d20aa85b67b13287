"""TargetIndex: a target fleet prepared once, for a scheduler's many small requests."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any, Iterable, Mapping


from .blocks import TargetKeys, in_order
from .devices import DeviceSet
from .dispatch import Plan, plan_prepared, prepare
from .engine import as_device_set, match, worker_count
from .policy import Policy
from .result import Bools, DeviceRules, Int64s, MatchResult, TargetDevices, ranked
from .scores import ClassVersions

if TYPE_CHECKING:
    from .native import NativeOutputs


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
        if chosen.interned is None or self._prepared is None:
            return match(devices, self.targets, self.policy, workers=self.workers).top_k(k)
        # Sources with a value no target has fail everywhere: their rows stay -1.
        asked = ~self._prepared.hopeless(devices)
        return ranked(len(devices), len(self.targets), k, self._native(devices, chosen, asked).top_k)

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
        outputs = self._native(devices, chosen)
        result = MatchResult(
            devices,
            self.targets,
            self.policy,
            interned.attributes,
            outputs,
            interned.sources.class_of,
            interned.targets.class_of,
            outputs.rules,
        )
        result.target_class_versions = self._target_class_versions
        return result

    def _native(self, devices: DeviceSet, chosen: Plan, asked: Bools | None = None) -> "NativeOutputs":
        """The kernel's outputs for one request: its sources against the prepared targets,
        in the targets' blocks where they pay."""
        from .native import NativeOutputs, prepared_problem

        interned = chosen.interned
        assert interned is not None
        rules = DeviceRules(devices, self._devices, self.policy.exclude_same_host)
        problem = prepared_problem(interned, self.workers, chosen.vector)
        blocks = self._keys.blocks(interned.sources)
        visited = None
        if blocks is not None:
            problem.block(blocks.start, blocks.ranges)
            visited = blocks.pairs / max(1, problem.shape[0])
        return NativeOutputs(problem, rules, interned.sources.class_of, self.workers, asked=asked, visited_per_row=visited)

    @cached_property
    def _target_class_versions(self) -> ClassVersions:
        return ClassVersions(self.targets, self._devices.target_class, self.policy.score_version)
