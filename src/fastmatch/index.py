"""TargetIndex: a target fleet prepared once, for a scheduler's many small requests."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any, Hashable, Iterable, Mapping, cast

import numpy as np

from .blocks import TargetKeys, in_order
from .devices import DeviceSet, descriptor_key, device_fields
from .dispatch import Plan, plan_prepared, prepare
from .engine import as_device_set, match, worker_count
from .errors import FastmatchError
from .policy import Policy
from ._request import IndexRequests, PlainRequests, Unseen
from .result import Bools, DeviceRules, Int64s, MatchResult, TargetDevices, memory_limit_of, ranked
from .scores import ClassVersions

if TYPE_CHECKING:
    from . import _kernel
    from .native import NativeOutputs

# What a request's descriptor is known to need: its problem (one source class against the
# targets), None when no target can take it, or the general path (its own records count).
_GENERAL = object()
_UNSEEN = object()
_NO_IDS: dict[str, int] = {}
# A list of records up to this long is answered record by record when its descriptors are kept
# (a VM's devices; measured, warm: 8-10 us a record against 70-500 us on the general path at
# 2 to 64 records, BENCHMARKS.md). Longer ones share the kernel's work per class there.
FEW_RECORDS = 64


class TargetIndex(IndexRequests):
    """Targets interned once; each request interns only its sources against them.

    ``index.top_k(sources, k)`` returns what ``match(sources, targets).top_k(k)``
    would, for a :class:`DeviceSet`, a list of records, or a single record (one
    row). Requests whose sources carry COMPATIBLE records that the policy reads
    (``direction`` ``source-offers`` or ``both``) take the full path.

    A single record's descriptor (its ``self``, ``compatible``, ``migration_version`` and
    ``migratable``, as written) is prepared once: the kernel's problem for it is kept for the
    next request with the same descriptor, whatever its id and host, up to
    ``prepared_descriptors`` of them (the oldest go first; 0 keeps none). Such a request is
    then answered by one native call (``native/_request.pyx``) that reads the record and finds
    its descriptor's problem holding the GIL (about a microsecond), then looks its host and id
    up among the targets' and ranks without it, so threads that share an index answer in
    parallel. A kept problem answers as the settings
    were when it was prepared (``FASTMATCH_IMPLEMENTATION``, ``FASTMATCH_BLOCKING``), and a
    single record's answer is held to ``FASTMATCH_MEMORY_LIMIT`` as it was when the index was
    made.
    """

    def __init__(
        self,
        targets: DeviceSet | Iterable[Mapping[str, Any]],
        policy: Policy | None = None,
        workers: int = 1,
        prepared_descriptors: int = 4096,
    ) -> None:
        from .native import request_targets

        if isinstance(prepared_descriptors, bool) or not isinstance(prepared_descriptors, int) or prepared_descriptors < 0:
            raise ValueError(f"prepared_descriptors must be an integer >= 0, got {prepared_descriptors!r}")
        if policy is None:
            policy = targets.policy if isinstance(targets, DeviceSet) else Policy.default()
        self.policy = policy
        self.targets = as_device_set(targets, policy)
        self.workers = worker_count(workers)
        self.prepared_descriptors = prepared_descriptors
        self._prepared = prepared = prepare(self.targets, policy)
        # The targets in blocked order once; each request then gets its own ranges of them.
        ops = prepared.context.op_arrays
        self._keys = TargetKeys(policy, ops["op_kind"], ops["op_row"], ops["op_word"], ops["op_bit"], prepared.targets)
        if self._keys.usable:
            prepared.targets = in_order(prepared.targets, self._keys.order)
        side = prepared.targets
        self._devices = TargetDevices(self.targets, side.class_of, side.n_classes)
        self._requests = request_targets(self._devices, policy.exclude_same_host)
        try:  # a one-record answer takes 16 bytes a column: the limit as it is now
            self._prepared_k = min(len(self.targets), memory_limit_of(None) // 16)
        except FastmatchError:  # a bad FASTMATCH_MEMORY_LIMIT: each request reports it
            self._prepared_k = 0
        # The descriptors' problems (_GENERAL aside), kept under PlainRequests' keys or descriptor_key's.
        self._plain = PlainRequests(
            prepared_descriptors, self._devices.host_code_of, self.targets.id_index, self._requests, self._prepared_k
        )

    def __len__(self) -> int:
        return len(self.targets)

    def __repr__(self) -> str:
        return f"<TargetIndex of {len(self.targets):,} targets, {self.workers} worker(s)>"

    def __reduce__(self) -> tuple[type[TargetIndex], tuple[DeviceSet, Policy, int, int]]:
        """An index pickles as its targets and policy: unpickled, they are prepared again."""
        return TargetIndex, (self.targets, self.policy, self.workers, self.prepared_descriptors)

    def _top_k(
        self, sources: DeviceSet | Iterable[Mapping[str, Any]] | Mapping[str, Any], k: int, plain: Unseen | None
    ) -> tuple[Int64s, Int64s]:
        """``top_k`` (``IndexRequests.top_k``) of any request but a plain record whose descriptor
        is kept; ``plain``: what ``PlainRequests`` said of it."""
        if type(sources) is dict and type(k) is int and 0 < k <= self._prepared_k:
            answer = self._top_k_of_record(sources, k, plain)
            if answer is not None:
                return answer
        if type(sources) is list and 1 < len(sources) <= FEW_RECORDS and type(k) is int and 0 < k <= self._prepared_k:
            answer = self._top_k_of_records(sources, k)
            if answer is not None:
                return answer
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

    def _top_k_of_record(self, record: dict[str, Any], k: int, unseen: Unseen | None) -> tuple[Int64s, Int64s] | None:
        """top_k of one record through the problem of its descriptor (prepared now if it is new),
        or None when it takes the general path: its own records count, or it is bad input, which
        the general path then reports as it always does. ``unseen``: what ``PlainRequests`` said
        of a plain record whose descriptor is not kept."""
        if "id" not in record:
            record = {"id": "request", **record}
        try:
            device_id, host, _, _ = device_fields(record, _NO_IDS)
        except FastmatchError:
            return None
        key: Hashable | None = unseen
        problem = _UNSEEN
        if key is None:
            key = descriptor_key(record)
            if key is not None:
                problem = self._plain.problem_of(key, _UNSEEN)
        if problem is _UNSEEN:
            problem = self._prepare_descriptor(record, key)
            if problem is _GENERAL:
                return None
        # A host no target is on is -1 (none is 0); a device that is no target has no twin.
        return self._requests.top_k(
            cast("_kernel.Problem | None", problem), self._devices.host_code_of.get(host, -1), self.targets.id_index.get(device_id, -1), k
        )

    def _top_k_of_records(self, records: list[Any], k: int) -> tuple[Int64s, Int64s] | None:
        """top_k of a few records, each through the problem of its descriptor, when at most one
        of them is new (preparing one costs less than interning the request whole; two or more
        are interned together by the general path); None for the general path, which also
        reports bad input, naming the record."""
        ids = [record.get("id") if type(record) is dict else None for record in records]
        if None in ids or len(set(ids)) < len(ids):
            return None
        rows, new = [], 0
        for record in records:
            row = self._plain.top_k(record, k)
            if not isinstance(row, tuple):
                new += 1
                if new > 1:
                    return None
                try:
                    row = self._top_k_of_record(record, k, row)
                except FastmatchError:
                    return None
                if row is None:
                    return None
            rows.append(row)
        return np.vstack([row[0] for row in rows]), np.vstack([row[1] for row in rows])

    def _prepare_descriptor(self, record: Mapping[str, Any], key: Hashable | None) -> Any:
        """What the descriptor of ``record`` needs (module comment), kept under ``key``. A bad
        descriptor raises here the error the general path raises."""
        devices = DeviceSet.from_records([record], self.policy)
        chosen = plan_prepared(devices, self._prepared)
        if chosen.interned is None:
            return _GENERAL  # not kept: the general path validates the record again anyway
        problem = None if self._prepared.hopeless(devices)[0] else self._problem(chosen)[0]
        if key is not None:
            self._plain.keep(key, problem)
        return problem

    def _problem(self, chosen: Plan) -> tuple["_kernel.Problem", float | None]:
        """The kernel's problem of a request's sources against the prepared targets, in the
        targets' blocks where they pay, and the target classes a source class visits then
        (None: all of them)."""
        from .native import prepared_problem

        interned = chosen.interned
        assert interned is not None
        problem = prepared_problem(interned, self.workers, chosen.vector)
        blocks = self._keys.blocks(interned.sources)
        if blocks is None:
            return problem, None
        problem.block(blocks.start, blocks.ranges, blocks.settled)
        return problem, blocks.pairs / max(1, problem.shape[0])

    def _native(self, devices: DeviceSet, chosen: Plan, asked: Bools | None = None) -> "NativeOutputs":
        """The kernel's outputs for one request: its sources against the prepared targets."""
        from .native import NativeOutputs

        assert chosen.interned is not None
        rules = DeviceRules(devices, self._devices, self.policy.exclude_same_host)
        problem, visited = self._problem(chosen)
        return NativeOutputs(problem, rules, chosen.interned.sources.class_of, self.workers, asked=asked, visited_per_row=visited)

    @cached_property
    def _target_class_versions(self) -> ClassVersions:
        return ClassVersions(self.targets, self._devices.target_class, self.policy.score_version)
