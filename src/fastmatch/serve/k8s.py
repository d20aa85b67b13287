"""The Kubernetes scheduler-extender protocol (``k8s.io/kube-scheduler/extender/v1``).

The scheduler POSTs ``ExtenderArgs`` (``Pod``, and ``Nodes`` or, when the extender is
``nodeCacheCapable``, ``NodeNames``) to ``/k8s/filter`` and ``/k8s/prioritize``. The current Go
types carry no JSON tags, so fields arrive capitalised; older releases tagged them in lower
case; Go's decoder matches names without regard to case, and so does this one. Answers use the
Go field names, which every release decodes.

A node's name is the ``host`` of its targets. A node passes the filter when, for each of the
pod's source devices, one of its targets is an available candidate (compatible, capacity > 0,
not the source's own host or device); a pod that names no source device passes everywhere.
A node that fails for want of capacity goes to ``FailedNodes`` (preempting a pod may free a
device); one that fails on compatibility, or has no targets, to ``FailedAndUnresolvableNodes``.
Both carry the reasons, by the names ``explain`` uses. A request is answered with NumPy over
the (node, target class) pairs of the nodes it names, and its reasons in words are made once
per distinct reason mask: never a Python loop per node or per target.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import compress
from typing import Any, Callable

import msgspec
import numpy as np

from ..devices import DeviceSet
from ..errors import FastmatchError
from ..reasons import SAME_DEVICE, SAME_HOST, reason_names
from ..result import MatchResult
from .config import K8sConfig, PodField
from .fleet import Fleet, Nodes
from .requests import RequestError, field_message

MAX_EXTENDER_PRIORITY = 10  # extenderv1.MaxExtenderPriority
NO_TARGETS = "no fastmatch target device on this node"
NO_CAPACITY = "every compatible device on this node has capacity 0"


class _Metadata(msgspec.Struct):
    name: str = ""
    namespace: str = ""
    annotations: dict[str, str] | None = None
    labels: dict[str, str] | None = None


class _Pod(msgspec.Struct):  # a v1.Pod has many more fields; only these are read
    metadata: _Metadata = msgspec.field(default_factory=_Metadata)


class _Node(msgspec.Struct):
    metadata: _Metadata


class _NodeList(msgspec.Struct):
    items: list[msgspec.Raw] | None = None


_FIELDS = {"pod": ("Pod", _Pod), "nodes": ("Nodes", _NodeList), "nodenames": ("NodeNames", list[str])}


@dataclass
class ExtenderArgs:
    pod: _Pod
    node_names: list[str]
    node_items: list[msgspec.Raw] | None  # the Node objects, when the scheduler sent Nodes
    node_names_json: bytes | None = None  # NodeNames as sent: the key of its host codes, kept per fleet


def decode_args(body: bytes, known_names: Callable[[bytes], list[str] | None] = lambda names_json: None) -> ExtenderArgs:
    """``ExtenderArgs`` with field names in any case; an error names the field. ``known_names``
    gives the names of a ``NodeNames`` JSON text already decoded (the fleet keeps recent ones)."""
    try:
        top = msgspec.json.decode(body, type=dict[str, msgspec.Raw])
    except msgspec.ValidationError as exc:
        raise RequestError(422, field_message(str(exc))) from None
    except msgspec.DecodeError as exc:
        raise RequestError(400, f"request body: {exc}") from None
    values: dict[str, Any] = {}
    names_json: bytes | None = None
    for key, raw in top.items():
        known = _FIELDS.get(key.lower())
        if known is None:
            raise RequestError(422, f"field '{key}': unknown field (expected Pod, Nodes or NodeNames)")
        name, kind = known
        if name in values:
            raise RequestError(422, f"field '{key}': {name} given twice (names match without regard to case)")
        if name == "NodeNames":
            names_json = bytes(raw)
            values[name] = known_names(names_json)
            if values[name] is not None:
                continue
        try:
            values[name] = msgspec.json.decode(raw, type=kind | None)
        except msgspec.ValidationError as exc:
            raise RequestError(422, field_message(str(exc), key)) from None
    if values.get("Pod") is None:
        raise RequestError(422, "field 'Pod': missing")
    if values.get("NodeNames") is not None:
        return ExtenderArgs(values["Pod"], values["NodeNames"], None, names_json)
    node_list = values.get("Nodes")
    if node_list is None:
        raise RequestError(422, "field 'NodeNames': missing (give NodeNames, or Nodes when the extender is not nodeCacheCapable)")
    items = node_list.items or []
    names = []
    for k, item in enumerate(items):
        try:
            names.append(msgspec.json.decode(item, type=_Node).metadata.name)
        except msgspec.ValidationError as exc:
            raise RequestError(422, field_message(str(exc), f"Nodes.items[{k}]")) from None
    return ExtenderArgs(values["Pod"], names, items)


class PodSourceError(Exception):
    """The pod names a source device that cannot be read: the filter answers it as ``Error``."""


def pod_sources(pod: _Pod, config: K8sConfig, fleet: Fleet) -> DeviceSet | None:
    """The pod's source devices (a VM may have several), or None when it names none."""
    meta = pod.metadata
    pod_name = f"pod {meta.namespace}/{meta.name}" if meta.namespace else f"pod {meta.name}"
    if config.device is None:
        text = (meta.annotations or {}).get(config.annotation)
        if text is None:
            return None
        where = f"{pod_name}: annotation {config.annotation!r}"
        try:
            records = msgspec.json.decode(text)
        except msgspec.DecodeError as exc:
            raise PodSourceError(f"{where}: not JSON: {exc}") from None
        if isinstance(records, dict):
            records = [records]
        if not isinstance(records, list) or not records:
            raise PodSourceError(f"{where}: expected a device record or a non-empty array of them")
        try:
            return DeviceSet.from_records(records, fleet.policy, source=where)
        except FastmatchError as exc:
            raise PodSourceError(str(exc)) from None
    device = _pod_value(meta, config.device)
    if device is None:
        return None
    known = fleet.sources
    i = known.id_index.get(device) if known is not None else None
    if known is None or i is None:
        raise PodSourceError(f"{pod_name}: {config.device} names device {device!r}, which is not in {config.sources}")
    if config.node is not None:
        node = _pod_value(meta, config.node)
        if node != known.hosts[i]:
            raise PodSourceError(
                f"{pod_name}: device {device!r} is on host {known.hosts[i]!r} in {config.sources}, "
                f"but {config.node} says {node!r}"
            )
    return DeviceSet.from_records([fleet.source_records[i]], fleet.policy)


def _pod_value(meta: _Metadata, where: PodField) -> str | None:
    found = meta.annotations if where.kind == "annotation" else meta.labels
    return (found or {}).get(where.name)


class NodeVerdicts:
    """For one request's sources, per requested node: whether it passes, why it fails, and
    (``priorities``) its 0-10 priority.

    A request reads one value per (node, target class) pair on the nodes it asks about
    (:class:`fleet.NodeClasses`), never one per target: the kernel's row of class scores and
    reasons for each source, gathered over those pairs. Only the device rules differ between
    targets of one class on one node (never the source's own host, nor the source itself),
    and they touch at most two nodes per source, answered from their targets."""

    def __init__(self, fleet: Fleet, sources: DeviceSet, node_names: list[str], names_json: bytes | None = None) -> None:
        nodes = fleet.nodes
        self.result = result = fleet.index.match(sources)
        self.sources = sources
        class_scores, class_reasons = result.class_scores, result.class_reasons
        classes = nodes.classes(result.target_class, class_scores.shape[1])
        asked = nodes.asked(classes, node_names, names_json)
        self.codes = codes = asked.codes
        self._name_array = asked.name_array
        rules = result.rules
        self.passes = codes > 0
        self.words = [NO_TARGETS]  # the reasons' texts met, each once
        self.word_of = np.zeros(len(codes), dtype=np.int64)  # a failing node's: its position in words
        self.resolvable = np.zeros(len(codes), dtype=bool)  # failing for want of capacity only
        self._best: list[np.ndarray] = []
        for i in range(len(sources)):
            c = int(result.source_class[i])
            row_scores = np.append(class_scores[c], -1)  # [n_classes]: an unavailable pair
            row_reasons = class_reasons[c]
            best = asked.best(row_scores)
            # The device rules (docs/model.md section 6, step 1): never its own host, nor itself.
            own_host = int(rules.source_host[i]) if rules.exclude_same_host else 0
            twin = int(rules.source_twin[i])
            ruled = {code: self._ruled_node(nodes, result, c, code, own_host, twin) for code in (own_host, nodes.host_of(twin)) if code > 0}
            at_ruled = {code: np.flatnonzero(codes == code) for code in ruled}
            for code, (node_best, _) in ruled.items():
                best[at_ruled[code]] = node_best
            passes = best >= 0
            newly_failed = ~passes & self.passes
            if newly_failed.any():
                # Why a node fails: the reasons of its closest device (the fewest reasons; a
                # compatible device with capacity 0 has none), per class from the kernel's row.
                where = np.flatnonzero(newly_failed)
                closest = asked.closest_class(_popcount(row_reasons), where)
                self.word_of[where] = self._class_words(i, row_reasons, closest)
                self.resolvable[where] = row_reasons[closest] == 0
                for code, (_, node_mask) in ruled.items():
                    at = at_ruled[code][newly_failed[at_ruled[code]]]
                    self.word_of[at] = len(self.words)
                    self.words.append(self._words(i, node_mask))
                    self.resolvable[at] = node_mask == 0
            self.passes &= passes
            self._best.append(best)

    @staticmethod
    def _ruled_node(nodes: Nodes, result: MatchResult, c: int, code: int, own_host: int, twin: int) -> tuple[int, int]:
        """``(best score, reason mask of the closest device)`` on the node of host ``code``,
        device by device: the node of the source's own host or of the source itself."""
        run = nodes.run(code)
        devices = nodes.order[run]
        device_class = result.target_class[devices]
        same_host = np.full(len(devices), code == own_host)
        itself = devices == twin
        usable = nodes.available[run] & ~same_host & ~itself
        scores = result.class_scores[c][device_class]
        best = int(scores[usable].max(initial=-1))
        reasons = result.class_reasons[c][device_class]
        closest = int(np.argmin(_popcount(reasons) + same_host + itself))  # the first of equals
        mask = int(reasons[closest]) | (SAME_HOST if same_host[closest] else 0) | (SAME_DEVICE if itself[closest] else 0)
        return best, mask

    def priorities(self) -> np.ndarray:
        """int64 per requested node, 0-10: the lowest of the sources' spread scores, 0 where it fails."""
        priority = np.full(len(self.codes), MAX_EXTENDER_PRIORITY, dtype=np.int64)
        for best in self._best:
            priority = np.minimum(priority, _spread(best))
        priority[~self.passes] = 0
        return priority

    def failures(self) -> tuple[dict[str, str], dict[str, str]]:
        """``(FailedNodes, FailedAndUnresolvableNodes)``: node -> the reasons, in words."""
        failing = ~self.passes
        words = np.empty(len(self.words), dtype=object)
        words[:] = self.words

        def said(chosen: np.ndarray) -> dict[str, str]:
            at = np.flatnonzero(chosen)
            return dict(zip(self._name_array[at].tolist(), words[self.word_of[at]].tolist()))

        return said(failing & self.resolvable), said(failing & ~self.resolvable)

    def _class_words(self, source: int, row_reasons: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """Per class of ``classes``, the position in ``words`` of its reasons against ``source``:
        one text per distinct reason mask among the classes met, then a lookup per node."""
        met = np.zeros(len(row_reasons), dtype=bool)
        met[classes] = True
        met_classes = np.flatnonzero(met)
        said: dict[int, int] = {}
        positions = []
        for mask in row_reasons[met_classes].tolist():
            if mask not in said:
                said[mask] = len(self.words)
                self.words.append(self._words(source, mask))
            positions.append(said[mask])
        word_of_class = np.zeros(len(row_reasons), dtype=np.int64)
        word_of_class[met_classes] = positions
        word_of: np.ndarray = word_of_class[classes]
        return word_of

    def _words(self, source: int, mask: int) -> str:
        if mask == 0:
            return NO_CAPACITY
        words = "incompatible: " + ", ".join(reason_names(mask, self.result.attributes))
        return f"source {self.sources.ids[source]!r}: {words}" if len(self.sources) > 1 else words


def _popcount(masks: np.ndarray) -> np.ndarray:
    """Set bits of each uint64 (any NumPy version)."""
    as_bytes = np.ascontiguousarray(masks, dtype=np.uint64).view(np.uint8).reshape(*masks.shape, 8)
    counts: np.ndarray = np.unpackbits(as_bytes, axis=-1).sum(axis=-1, dtype=np.int64)
    return counts


def _spread(best: np.ndarray) -> np.ndarray:
    """Scores of the passing nodes spread over 1-10 by their rank (equal scores, equal priority;
    the best 10), 0 for the others: the ranking, not the int64, decides."""
    out = np.zeros(len(best), dtype=np.int64)
    passing = best >= 0
    if not passing.any():
        return out
    levels, rank_of = np.unique(-best[passing], return_inverse=True)
    if len(levels) == 1:
        out[passing] = MAX_EXTENDER_PRIORITY
    else:
        out[passing] = MAX_EXTENDER_PRIORITY - (rank_of * (MAX_EXTENDER_PRIORITY - 1)) // (len(levels) - 1)
    return out


def filter_nodes(fleet: Fleet, config: K8sConfig, args: ExtenderArgs) -> dict[str, Any]:
    """``ExtenderFilterResult``, in the form the scheduler sent (``NodeNames`` or ``Nodes``)."""
    names = args.node_names
    try:
        sources = pod_sources(args.pod, config, fleet)
    except PodSourceError as exc:
        return {"NodeNames": None, "FailedNodes": {}, "FailedAndUnresolvableNodes": {}, "Error": str(exc)}
    if sources is None:
        passes = [True] * len(names)
        failed: dict[str, str] = {}
        unresolvable: dict[str, str] = {}
    else:
        verdicts = NodeVerdicts(fleet, sources, names, args.node_names_json)
        passes = verdicts.passes.tolist()
        failed, unresolvable = verdicts.failures()
    answer: dict[str, Any] = {"FailedNodes": failed, "FailedAndUnresolvableNodes": unresolvable, "Error": ""}
    if args.node_items is None:
        answer["NodeNames"] = list(compress(names, passes))
    else:
        answer["Nodes"] = {"items": list(compress(args.node_items, passes))}
    return answer


def prioritize_nodes(fleet: Fleet, config: K8sConfig, args: ExtenderArgs) -> list[dict[str, Any]]:
    """``HostPriorityList``: each node's 0-10 score (all 0 for a pod that names no source device)."""
    names = args.node_names
    try:
        sources = pod_sources(args.pod, config, fleet)
    except PodSourceError as exc:
        raise RequestError(422, str(exc), kind="pod") from None
    priority = [0] * len(names) if sources is None else NodeVerdicts(fleet, sources, names, args.node_names_json).priorities().tolist()
    return [{"Host": name, "Score": score} for name, score in zip(names, priority)]
