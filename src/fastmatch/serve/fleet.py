"""The live fleet: targets prepared once, grouped by node, swapped as a whole.

A request reads ``holder.fleet`` once and works on that object to its end: a reload builds
a new :class:`Fleet` off to the side and replaces the one reference, so requests in flight
finish on the old fleet and none ever sees a half-built one. A fleet that fails to load is
refused with its error, and the old one keeps serving.
"""

from __future__ import annotations

import threading
import time
from itertools import repeat
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..devices import DeviceSet
from ..engine import load, validate_others
from ..errors import FastmatchError
from ..formats import read_data
from ..formats.fleet_lines import looks_like_fleet_lines, read_fleet_lines
from ..index import TargetIndex
from ..policy import Policy
from .config import ServeConfig


RECENT_NODE_LISTS = 16  # node lists whose host codes are kept, per fleet
RECENT_NODE_LIST_BYTES = 1 << 20  # the longest kept (about 60,000 names): at most ~24 MiB kept in all


class Nodes:
    """The targets grouped by host (a Kubernetes node's name is its targets' host), as arrays:
    per request, the nodes are answered with NumPy over all targets at once, never a loop.

    Positions below are in *node order*: the targets sorted by host code, each node's targets
    one run (``start``), so per-node reductions read memory in order."""

    def __init__(self, targets: DeviceSet) -> None:
        names, host = targets.host_codes  # code 0: the empty host, on no node
        self.count = len(names) - 1
        self.order = np.argsort(host, kind="stable")  # node order -> target
        self.position = np.empty(len(host), dtype=np.int64)  # target -> node order
        self.position[self.order] = np.arange(len(host))
        self.host = host[self.order]
        self.available = targets.capacities[self.order] > 0
        # Codes 1.. all have targets (code 0 only when some target has no host): each run's start.
        self.start = np.searchsorted(self.host, np.arange(1, len(names)))
        self._code_of = {name: code for code, name in enumerate(names) if code}
        self._ranks = np.arange(len(host), dtype=np.int64)
        self._class_in_order: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        # A scheduler sends the same node list over and over (its node cache, every pod of a
        # cycle): the codes of the last few lists, by their JSON text, skip 5,000 dict lookups.
        self._recent_codes: dict[bytes, np.ndarray] = {}
        self._recent_lock = threading.Lock()  # taken only to add a list

    def run(self, code: int) -> slice:
        """The positions (node order) of the targets on the node of host ``code`` (>= 1)."""
        stop = self.start[code] if code < self.count else len(self.host)
        return slice(int(self.start[code - 1]), int(stop))

    def in_order(self, target_class: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray]:
        """``(target_class, available_class)`` in node order, where ``available_class`` is the
        class of an available target and ``classes`` (one past the last) of the others, so that
        one gather over a class row with -1 appended gives the candidates' scores. A prepared
        index gives every request the same array: reordered once, kept (the tuple is replaced
        whole, so threads see one or the other)."""
        kept = self._class_in_order
        if kept is None or kept[0] is not target_class:
            ordered = target_class[self.order]
            kept = self._class_in_order = (target_class, ordered, np.where(self.available, ordered, classes))
        return kept[1], kept[2]

    def codes(self, node_names: list[str]) -> np.ndarray:
        """Each name's host code, 0 for a name no target is on (dict lookups at C speed)."""
        return np.fromiter(map(self._code_of.get, node_names, repeat(0)), np.int64, len(node_names))

    def codes_of_json(self, names_json: bytes, node_names: list[str]) -> np.ndarray:
        """``codes(node_names)``, where ``names_json`` is the JSON text ``node_names`` was decoded from."""
        if len(names_json) > RECENT_NODE_LIST_BYTES:
            return self.codes(node_names)
        codes = self._recent_codes.get(names_json)
        if codes is None:
            codes = self.codes(node_names)
            codes.flags.writeable = False  # shared by every request that sends the same list
            with self._recent_lock:
                if len(self._recent_codes) >= RECENT_NODE_LISTS:
                    del self._recent_codes[next(iter(self._recent_codes))]  # the oldest
                self._recent_codes[names_json] = codes
        return codes

    def per_node_max(self, values: np.ndarray) -> np.ndarray:
        """int64 [host codes]: the largest of ``values`` (in node order) on each node; [0] is -1."""
        out = np.full(self.count + 1, -1, dtype=np.int64)
        if self.count:
            out[1:] = np.maximum.reduceat(values, self.start)
        return out

    def per_node_argmin(self, keys: np.ndarray) -> np.ndarray:
        """int64 [host codes]: the target (its index) with the smallest of ``keys`` (in node order,
        small non-negative integers) on each node, the first of equals; [0] is -1."""
        out = np.full(self.count + 1, -1, dtype=np.int64)
        if self.count:
            n = len(keys)
            ranked = keys * n
            ranked += self._ranks  # ties: the first in node order, which keeps input order within a node
            out[1:] = self.order[np.minimum.reduceat(ranked, self.start) % n]
        return out


class Fleet:
    """One prepared target fleet (and the source devices the Kubernetes adapter looks up)."""

    def __init__(self, targets: DeviceSet, policy: Policy, origin: str, sources: DeviceSet | None, generation: int) -> None:
        self.targets = targets
        self.policy = policy
        self.origin = origin
        self.generation = generation
        self.loaded_at = time.time()
        self.index = TargetIndex(targets, policy, workers=1)
        self.nodes = Nodes(targets)
        self.sources = sources
        self.source_records = sources.to_records() if sources is not None else []  # looked up by position

    def summary(self) -> dict[str, Any]:
        available = self.targets.capacities > 0
        return {
            "targets": len(self.targets),
            "descriptors": len(self.targets.descriptors),
            "nodes": self.nodes.count,
            "available": int(available.sum()),
            "capacity": int(self.targets.capacities.sum()),
            "origin": self.origin,
            "generation": self.generation,
            "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.loaded_at)),
            "source_devices": None if self.sources is None else len(self.sources),
        }


def read_fleet_bytes(data: bytes, name: str, policy: Policy) -> DeviceSet:
    """Targets from an uploaded body, in any format a file may hold (errors name ``name``)."""
    if looks_like_fleet_lines(data):
        devices = read_fleet_lines(data, policy)
        if devices is not None:
            return devices
    others: list[tuple[Any, Any]] = []
    records, places = read_data(data, Path(name), role="target", others=others)
    validate_others(others, policy, name, None)
    return DeviceSet.from_records(records, policy, source=name, lines=places)


class FleetHolder:
    """The fleet requests read, and the one place it is replaced."""

    def __init__(self, config: ServeConfig, on_reload: Callable[[str, Fleet], None] | None = None) -> None:
        self.config = config
        self._lock = threading.Lock()  # one reload at a time; requests never take it
        self.on_reload = on_reload or (lambda outcome, fleet: None)  # (outcome, fleet): "done" or "refused"
        self.fleet = self._build(load(config.targets, config.policy, role="target"), config.targets, self._read_sources(), 1)

    def _read_sources(self) -> DeviceSet | None:
        path = self.config.k8s.sources
        return None if path is None else load(path, self.config.policy, role="source")

    def _build(self, targets: DeviceSet, origin: str, sources: DeviceSet | None, generation: int) -> Fleet:
        return Fleet(targets, self.config.policy, origin, sources, generation)

    def reload_file(self) -> Fleet:
        """Read ``--targets`` (and the adapter's sources file) again (SIGHUP)."""
        with self._lock:
            return self._replace(
                lambda: self._build(
                    load(self.config.targets, self.config.policy, role="target"),
                    self.config.targets,
                    self._read_sources(),
                    self.fleet.generation + 1,
                )
            )

    def replace_with(self, data: bytes) -> Fleet:
        """Targets uploaded with ``POST /v1/targets``; the sources file stays as it is."""
        with self._lock:
            current = self.fleet
            return self._replace(
                lambda: self._build(
                    read_fleet_bytes(data, "request body", self.config.policy), "POST /v1/targets", current.sources, current.generation + 1
                )
            )

    def _replace(self, build: Callable[[], Fleet]) -> Fleet:
        try:
            fleet = build()
        except FastmatchError:
            self.on_reload("refused", self.fleet)
            raise
        self.fleet = fleet  # the swap: one reference, read once by each request
        self.on_reload("done", fleet)
        return fleet
