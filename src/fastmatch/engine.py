"""The public entry points: load, match, check. Chooses the native kernel or the reference."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import numpy as np

from .devices import DeviceSet, check_records_argument, fleet_attribute_order
from .dispatch import plan
from .errors import FastmatchError
from .files import STDIN, input_name
from .formats import check_options, read_data, read_file, read_path
from .formats.columnar import read_columnar_devices
from .formats.fleet_lines import looks_like_fleet_lines, read_fleet_lines
from .magic import COLUMNAR_FORMATS, columnar_format
from .policy import Policy
from .progress import Stages
from .reasons import reason_names
from .reference import descriptor_outcomes
from .result import DeviceRules, MatchResult, ReferenceOutputs, TargetDevices, few_among, twins

def load(
    path: str | Path,
    policy: Policy | None = None,
    *,
    input_format: str | None = None,
    role: str | None = None,
    host: str = "",
    on_error: Callable[[Any, FastmatchError], None] | None = None,
    progress: Callable[..., Any] | None = None,
) -> DeviceSet:
    """Read devices from any input format (docs/model.md section 9), told apart by content.

    A file of fleet JSON Lines, a JSON array of records, a seed document or
    SELF/COMPATIBLE text; a Parquet or Arrow IPC table (fastmatch.formats.columnar); libvirt node-device XML (a file or a directory); or
    a sysfs tree. ``input_format`` forces one (``json``, ``text``, ``libvirt``,
    ``sysfs``). ``role`` (``source`` or ``target``) keeps only the mdevs or
    only the mdev types of a libvirt or sysfs input; ``host`` sets their host.
    With ``on_error(raw, error)``, bad records are handed to it and left out
    instead of stopping the read. ``progress`` is a ``tqdm``-like factory for a bar per
    stage of the reading (bytes read, lines decoded, descriptors or records validated).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or a path, got {type(path).__name__}")
    policy = _policy_argument(policy)
    if on_error is not None and not callable(on_error):
        raise TypeError(f"on_error must be callable, got {type(on_error).__name__}")
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be callable or None, got {type(progress).__name__}")
    check_options(path, input_format, role)
    name = input_name(path)
    stages = Stages(progress, name)
    others: list[tuple[Any, Any]] = []  # what a libvirt or sysfs input describes for the other role
    if str(path) != STDIN and Path(path).is_dir():
        records, places = read_path(path, input_format, role=role, host=host, on_error=on_error, others=others)
    else:
        # Read once: a pipe or standard input cannot be read again.
        data = read_file(path, input_format, stages=stages)
        if on_error is None and input_format in (None, "json") and looks_like_fleet_lines(data):
            # Large, valid fleet JSON Lines take the fast path; anything it does not take as it
            # is, the careful readers below read again from the same bytes, and report.
            devices = read_fleet_lines(data, policy, stages)
            if devices is not None:
                return devices
        columnar = input_format or columnar_format(data)
        if on_error is None and columnar in COLUMNAR_FORMATS:
            # Column-wise, as the fast path above; the row-wise reader words what it refuses.
            devices = read_columnar_devices(data, name, columnar, policy)
            if devices is not None:
                return devices
        records, places = read_data(data, Path(name), input_format, role=role, host=host, on_error=on_error, others=others)
    validate_others(others, policy, name, on_error)
    counted = stages.counted(records, "validating", len(records), "record")
    return DeviceSet.from_records(counted, policy, source=name, lines=places, on_error=on_error)


def validate_others(
    others: list[tuple[Any, Any]], policy: Policy, name: str | None, on_error: Callable[[Any, FastmatchError], None] | None
) -> None:
    """Every reader validates the whole input, whatever role it is read for: the
    records of the other role are validated too, then left out."""
    if others:
        records, places = zip(*others)
        DeviceSet.from_records(records, policy, source=name, lines=places, on_error=on_error)


def _policy_argument(policy: Any) -> Policy:
    if policy is None:
        return Policy.default()
    if not isinstance(policy, Policy):
        raise TypeError(f"policy must be a fastmatch.Policy or None, got {type(policy).__name__}")
    return policy


def as_device_set(devices: DeviceSet | Iterable[Mapping[str, Any]], policy: Policy, argument: str = "records") -> DeviceSet:
    if isinstance(devices, DeviceSet):
        return devices.with_policy(policy)
    check_records_argument(devices, argument)
    return DeviceSet.from_records(devices, policy)


# More kernel threads than cores only add contention, and OpenMP fails (or crashes)
# when asked for tens of thousands; 256 is far above any host fastmatch runs on.
MAX_WORKERS = 256


def available_cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(len(os.sched_getaffinity(0)), 1)
    return os.cpu_count() or 1


def worker_count(workers: int) -> int:
    """Kernel threads: ``workers`` (-1: all cores), capped at the cores this process
    may run on and at :data:`MAX_WORKERS`."""
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)):
        raise TypeError(f"workers must be an int, got {type(workers).__name__}")
    if workers < 1 and workers != -1:
        raise ValueError(f"workers must be -1 (all cores) or an integer >= 1, got {workers!r}")
    cores = min(available_cores(), MAX_WORKERS)
    return cores if workers == -1 else min(int(workers), cores)


# Devices of both sets from which a match finds the sources' twins beside its interning: on
# this project's VM a thread took 0.6 ms to start and join (median of 200), and the twins of
# 10,000 devices among 10,000 took 0.37 ms to find, of 65,536 among 65,536 2.9 ms.
TWINS_ASIDE = 1 << 16


def match(
    sources: DeviceSet | Iterable[Mapping[str, Any]],
    targets: DeviceSet | Iterable[Mapping[str, Any]],
    policy: Policy | None = None,
    workers: int = -1,
    *,
    block: int | None = None,
    confirm: Callable[[str, str], bool] | None = None,
    memory_limit: int | None = None,
    progress: Callable[..., Any] | None = None,
) -> MatchResult:
    """Evaluate every source -> target pair (docs/model.md sections 6-8).

    ``policy`` defaults to the sources' policy. ``workers`` is the number of
    threads of the native kernel (-1: all cores); ``block`` the number of
    source classes per block. ``confirm(source_version, target_version)``
    replaces the built-in equality of the opaque check. ``memory_limit`` (bytes)
    caps the dense arrays a result builds on demand; ``progress`` is a
    ``tqdm``-like factory for a progress bar over the pairs.
    """
    if policy is None:
        policy = sources.policy if isinstance(sources, DeviceSet) else Policy.default()
    policy = _policy_argument(policy)
    for name, function in (("confirm", confirm), ("progress", progress)):
        if function is not None and not callable(function):
            raise TypeError(f"{name} must be callable or None, got {type(function).__name__}")
    for name, number in (("block", block), ("memory_limit", memory_limit)):
        if number is not None and (isinstance(number, bool) or not isinstance(number, (int, np.integer))):
            raise TypeError(f"{name} must be an int or None, got {type(number).__name__}")
    sources = as_device_set(sources, policy, "sources")
    targets = as_device_set(targets, policy, "targets")
    n_workers = worker_count(workers)
    if block is not None and block < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    # The targets named like the sources (every output's DeviceRules), found natively and
    # without the GIL while the two sets are interned, mostly in Python: a whole fleet's took
    # 0.09 s of a 1,000,000-device match's 0.22 s (BENCHMARKS.md, session 9). Only where they
    # are kept for the two sets (``result.twins``), for the match's rules to find.
    aside = len(sources) + len(targets) >= TWINS_ASIDE and not few_among(sources.ids, targets.ids)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fastmatch-twins") as finder:
        found = finder.submit(twins, sources, targets) if aside else None
        chosen = plan(sources, targets, policy, confirm)
        if found is not None:
            found.result()
    if not chosen.native:  # FASTMATCH_IMPLEMENTATION=python: the native kernel takes every input
        result = match_reference(sources, targets, policy, confirm, memory_limit)
    else:
        from .native import run_native

        result = run_native(chosen, sources, targets, policy, n_workers, block, memory_limit, progress)
    result.made_by = (sources, targets, policy, workers, block, confirm, memory_limit)
    return result


def rematch(
    sources: DeviceSet,
    targets: DeviceSet,
    policy: Policy,
    workers: int,
    block: int | None,
    confirm: Callable[[str, str], bool] | None,
    memory_limit: int | None,
) -> MatchResult:
    """``match`` again, from the arguments a pickled result keeps (``MatchResult.__reduce__``)."""
    return match(sources, targets, policy, workers, block=block, confirm=confirm, memory_limit=memory_limit)


def match_reference(
    sources: DeviceSet,
    targets: DeviceSet,
    policy: Policy,
    confirm: Callable[[str, str], bool] | None = None,
    memory_limit: int | None = None,
) -> MatchResult:
    """Every pair through the plain-Python reference; each device is its own class."""
    rules = DeviceRules(sources, TargetDevices(targets, np.arange(len(targets)), len(targets)), policy.exclude_same_host)
    return MatchResult(
        sources,
        targets,
        policy,
        fleet_attribute_order(policy, sources, targets),
        ReferenceOutputs(descriptor_outcomes(sources, targets, policy, confirm), rules),
        np.arange(len(sources)),
        np.arange(len(targets)),
        rules,
        memory_limit,
    )


class Reasons(int):
    """A reason mask that also reads as the names of its reasons (``"pv_mode" in r``)."""

    names: list[str]

    def __new__(cls, mask: int, names: list[str]) -> "Reasons":
        self = super().__new__(cls, mask)
        self.names = names
        return self

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        return f"Reasons({int(self):#x}, {self.names})"


@dataclass(frozen=True)
class CheckResult:
    """One pair's verdict. ``score`` is the exact int64 (for comparing in Python); ``parts`` is
    the score as people and JSON read it (fastmatch.scores), None when incompatible. Its repr
    leaves out the int64 and the explanation (print ``explanation`` to read it)."""

    compatible: bool
    reasons: Reasons
    score: int = field(repr=False)
    parts: dict[str, Any] | None
    explanation: str = field(repr=False)

    def __bool__(self) -> bool:
        """True when the pair is compatible."""
        return self.compatible


def check(
    source_record: Mapping[str, Any], target_record: Mapping[str, Any], policy: Policy | None = None
) -> CheckResult:
    """One pair, as the upstream write-to-check would answer it, with the reasons."""
    policy = policy or Policy.default()
    source_record, target_record = _with_ids(source_record, target_record)
    result = match([source_record], [target_record], policy, workers=1)
    mask = int(result.reasons[0, 0])
    explained = result.explanation(0, 0)
    return CheckResult(
        compatible=mask == 0,
        reasons=Reasons(mask, reason_names(mask, result.attributes)),
        score=int(result.scores[0, 0]),
        parts=explained["score"],
        explanation=explained["text"],
    )


def _with_ids(source: Mapping[str, Any], target: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """Records without an id get one that cannot make them the same device by accident."""
    records = [source, target]
    for k, default in ((0, "source"), (1, "target")):
        record, other = records[k], records[1 - k]
        if isinstance(record, Mapping) and "id" not in record:
            taken = other.get("id") if isinstance(other, Mapping) else None
            records[k] = {"id": default if default != taken else f"{default} (check)", **record}
    return records[0], records[1]
