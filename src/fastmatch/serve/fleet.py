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


RECENT_NODE_LISTS = 16  # node lists whose codes and pairs are kept, per fleet
RECENT_NODE_LIST_BYTES = 1 << 20  # the longest list kept (about 60,000 names): at most 16 MiB of keys
RECENT_SIZE = 500_000  # names and (node, class) pairs kept over all lists: a name costs ~80 bytes, a pair 24


class Nodes:
    """The targets grouped by host (a Kubernetes node's name is its targets' host).

    Positions below are in *node order*: the targets sorted by host code, each node's targets
    one run (``start``), in input order within it."""

    def __init__(self, targets: DeviceSet) -> None:
        names, host = targets.host_codes  # code 0: the empty host, on no node
        self.count = len(names) - 1
        self.target_host = host
        self.order = np.argsort(host, kind="stable")  # node order -> target
        self.host = host[self.order]
        self.available = targets.capacities[self.order] > 0
        # Codes 1.. all have targets (code 0 only when some target has no host): each run's start.
        self.start = np.searchsorted(self.host, np.arange(1, len(names)))
        self._code_of = {name: code for code, name in enumerate(names) if code}
        self._classes: NodeClasses | None = None
        # A scheduler sends the same node list over and over (its node cache, every pod of a
        # cycle): the last few lists, by their JSON text, keep their codes and their pairs.
        self._recent: dict[bytes, AskedNodes] = {}
        self._recent_lock = threading.Lock()  # taken only to add a list

    def run(self, code: int) -> slice:
        """The positions (node order) of the targets on the node of host ``code`` (>= 1)."""
        stop = self.start[code] if code < self.count else len(self.host)
        return slice(int(self.start[code - 1]), int(stop))

    def host_of(self, target: int) -> int:
        """The host code of target ``target`` (an index; 0 for -1, no target)."""
        return int(self.target_host[target]) if target >= 0 else 0

    def classes(self, target_class: np.ndarray, n_classes: int) -> NodeClasses:
        """The (node, class) pairs for this class numbering of the targets. A prepared index
        gives every request the same numbering: built once, kept (replaced whole, so threads
        see one or the other); a request on another numbering (the full path) builds its own."""
        kept = self._classes
        if kept is not None and kept.same_numbering(target_class, n_classes):
            return kept
        built = self._classes = NodeClasses(self, target_class, n_classes)
        return built

    def codes(self, node_names: list[str]) -> np.ndarray:
        """Each name's host code, 0 for a name no target is on (dict lookups at C speed)."""
        return np.fromiter(map(self._code_of.get, node_names, repeat(0)), np.int64, len(node_names))

    def recent_names(self, names_json: bytes) -> list[str] | None:
        """The names of a node list kept by its JSON text (decoded, and found valid, when it
        was first sent), or None: a list sent again is neither decoded nor hashed anew."""
        kept = self._recent.get(names_json)
        return None if kept is None else kept.names

    def asked(self, classes: NodeClasses, node_names: list[str], names_json: bytes | None = None) -> AskedNodes:
        """``node_names``'s pairs; ``names_json``, when given, is the JSON text they were decoded
        from, by which the last few lists are kept."""
        if names_json is None or len(names_json) > RECENT_NODE_LIST_BYTES:
            return AskedNodes(classes, node_names, self.codes(node_names))
        kept = self._recent.get(names_json)
        if kept is not None and kept.classes is classes:
            return kept
        asked = AskedNodes(classes, node_names, self.codes(node_names) if kept is None else kept.codes)
        if asked.size > RECENT_SIZE:
            return asked
        with self._recent_lock:
            self._recent.pop(names_json, None)
            while self._recent and (
                len(self._recent) >= RECENT_NODE_LISTS or sum(other.size for other in self._recent.values()) + asked.size > RECENT_SIZE
            ):
                del self._recent[next(iter(self._recent))]  # the oldest
            self._recent[names_json] = asked
        return asked


class NodeClasses:
    """The distinct (node, target class) pairs of the fleet, for one class numbering of its
    targets: a filter reads one value per pair on the nodes it asks about, never one per
    target. Targets of one class on one node are alike to a request, but for their capacity
    (a pair is available when one of them is) and their input order (a pair stands for its
    first target, which is the one a tie picks)."""

    def __init__(self, nodes: Nodes, target_class: np.ndarray, n_classes: int) -> None:
        self.target_class = target_class
        self.n_classes = n_classes
        self.n_targets = len(target_class)
        class_in_order = target_class[nodes.order]
        by_pair = np.argsort(nodes.host * n_classes + class_in_order, kind="stable")  # node, class, node order
        host, classes = nodes.host[by_pair], class_in_order[by_pair]
        new_pair = np.ones(len(by_pair), dtype=bool)
        new_pair[1:] = (host[1:] != host[:-1]) | (classes[1:] != classes[:-1])
        starts = np.flatnonzero(new_pair)
        self.pair_class = classes[starts]
        self.pair_first = nodes.order[by_pair[starts]]  # the pair's first target (input index)
        available = np.logical_or.reduceat(nodes.available[by_pair], starts) if len(starts) else np.zeros(0, dtype=bool)
        # unavailable pairs point one past the last class, where a request's row holds -1
        self.pair_available_class = np.where(available, self.pair_class, n_classes)
        self.node_start = np.searchsorted(host[starts], np.arange(nodes.count + 1))  # host code -> its first pair
        self.node_pairs = np.diff(self.node_start, append=len(starts))
        self.node_pairs[0] = 0  # code 0: targets without a host, on no node

    def same_numbering(self, target_class: np.ndarray, n_classes: int) -> bool:
        return n_classes == self.n_classes and (
            target_class is self.target_class or np.array_equal(target_class, self.target_class)
        )


class AskedNodes:
    """One request's node list (``names``; ``codes``: their host codes, 0 for a name with no
    target, repeats allowed) as its nodes' pairs, one segment per node that has any."""

    def __init__(self, classes: NodeClasses, names: list[str], codes: np.ndarray) -> None:
        self.classes = classes
        self.names = names
        self.name_array = np.empty(len(names), dtype=object)  # the names picked by position at C speed
        self.name_array[:] = names
        self.codes = codes
        lengths = classes.node_pairs[codes]
        ends = np.cumsum(lengths)
        begins = ends - lengths
        pairs = np.arange(int(ends[-1]) if len(ends) else 0) + np.repeat(classes.node_start[codes] - begins, lengths)
        self.has_pairs = lengths > 0
        self.segments = begins[self.has_pairs]
        self.available_class = classes.pair_available_class[pairs]
        self.pair_class = classes.pair_class[pairs]
        self.pair_first = classes.pair_first[pairs]
        for kept in (codes, self.segments, self.available_class, self.pair_class, self.pair_first):
            kept.flags.writeable = False  # shared by every request that sends the same list
        self.size = len(names) + len(pairs)

    def best(self, scores: np.ndarray) -> np.ndarray:
        """int64 per asked node: the highest of ``scores`` (per class, -1 appended for the
        unavailable) over its available targets; -1 for a node with none."""
        out = np.full(len(self.codes), -1, dtype=np.int64)
        if len(self.segments):
            out[self.has_pairs] = np.maximum.reduceat(scores[self.available_class], self.segments)
        return out

    def closest_class(self, keys: np.ndarray, asked: np.ndarray) -> np.ndarray:
        """int64 per position in ``asked`` (nodes with pairs): the class of the node's target
        with the smallest of ``keys`` (per class, small non-negative integers), the first of
        equals in input order."""
        m = self.classes.n_targets
        ranked = keys[self.pair_class] * m + self.pair_first
        segment = np.cumsum(self.has_pairs) - 1  # asked position -> its segment
        first = np.minimum.reduceat(ranked, self.segments)[segment[asked]] % m
        closest: np.ndarray = self.classes.target_class[first]
        return closest


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

    def build_from_file(self, generation: int) -> Fleet:
        """``--targets`` (and the adapter's sources file) read again, not yet in service."""
        return self._build(load(self.config.targets, self.config.policy, role="target"), self.config.targets, self._read_sources(), generation)

    def build_from_body(self, data: bytes, generation: int) -> Fleet:
        """Targets uploaded with ``POST /v1/targets``, not yet in service; the sources file stays as it is."""
        return self._build(read_fleet_bytes(data, "request body", self.config.policy), "POST /v1/targets", self.fleet.sources, generation)

    def swap(self, fleet: Fleet) -> None:
        self.fleet = fleet  # one reference, read once by each request

    def reload_file(self) -> Fleet:
        """Read ``--targets`` (and the adapter's sources file) again (SIGHUP)."""
        with self._lock:
            return self._replace(lambda: self.build_from_file(self.fleet.generation + 1))

    def replace_with(self, data: bytes) -> Fleet:
        """Targets uploaded with ``POST /v1/targets``."""
        with self._lock:
            return self._replace(lambda: self.build_from_body(data, self.fleet.generation + 1))

    def _replace(self, build: Callable[[], Fleet]) -> Fleet:
        try:
            fleet = build()
        except FastmatchError:
            self.on_reload("refused", self.fleet)
            raise
        self.swap(fleet)
        self.on_reload("done", fleet)
        return fleet
