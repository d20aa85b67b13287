"""The figures of ``fastmatch report`` as plain data: what ``--format json`` writes and the
HTML page draws.

Nothing here visits a pair of devices. The kernel's outcomes are read per *descriptor class*
(devices that are alike), one source class's row at a time (``row``), and weighted by how
many devices each class holds; the device rules that classes cannot see (a source never goes
to itself, nor to a target on its own host; capacity) are added from devices grouped by
(host, class): a host's sources against that host's targets, never the fleet against itself.

When the class shape is too large to read whole (more than :data:`MAX_CLASS_PAIRS` class
pairs: fleets whose devices are nearly all distinct), the class-level figures (reasons, the
heatmap, versions, capacity's reach) are estimated from a seeded sample of source classes and
say so (``sample``); the summary and the stranded sources are always exact.
"""

from __future__ import annotations

import collections
import hashlib
import os
import stat
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np

from .. import __version__
from ..files import STDIN
from ..reasons import outcome_reasons, reason_names
from ..devices import DeviceSet
from ..policy import Policy
from ..result import MatchResult
from ..values import Version

if TYPE_CHECKING:
    from ..drain import Plan

# Class pairs read for the class-level figures: every source class's row when the class shape
# is at most this (2,000 x 2,000 distinct descriptors is 4M), otherwise a sample of rows.
MAX_CLASS_PAIRS = 1 << 25
# Class pairs (or host tuples) handled at once: bounds the temporaries to some tens of MB.
PAIRS_PER_CHUNK = 1 << 22
# Groups on each axis of the heatmap: beyond, coarser groups, then the largest and "other".
MAX_GROUPS = 60
# Versions per side of one type's version-skew panel, and the panels drawn (the data has all).
MAX_VERSIONS = 24
# Stranded groups whose reasons are read (each costs a row of the kernel); the rest say so.
MAX_STRANDED_GROUPS_EXPLAINED = 200
SAMPLE_IDS = 5
# The words of device rules and capacity, beside the reason names of fastmatch.reasons.
NO_CAPACITY = "capacity 0"
NO_TARGET_OF_TYPE = "no target of this type"
ABSENT = "(none)"


@dataclass
class _Side:
    """One side's classes: how many devices each holds and the values the figures group by."""

    device_class: np.ndarray
    size: np.ndarray  # devices per class
    vendor: list[str]
    type: list[str]
    version: list[Version | None]
    migratable: list[bool]
    descriptor: list[dict[str, str]]

    @classmethod
    def of(cls, result: MatchResult, devices: DeviceSet, device_class: np.ndarray, n_classes: int) -> "_Side":
        first = np.full(n_classes, -1, dtype=np.int64)
        first[device_class[::-1]] = np.arange(len(device_class) - 1, -1, -1)
        policy = result.policy
        vendor, kind, version, migratable, descriptor = [], [], [], [], []
        for i in first.tolist():
            d = devices.descriptor(i)
            values = d.values
            vendor.append(_text(values.get("vendor_driver", values.get("device_api"))))
            kind.append(_text(values.get(policy.score_type)) if policy.score_type else ABSENT)
            v = values.get(policy.score_version) if policy.score_version else None
            version.append(v if isinstance(v, Version) else None)
            migratable.append(d.migratable)
            descriptor.append({name: _text(value) for name, value in values.items()})
        return cls(device_class, np.bincount(device_class, minlength=n_classes), vendor, kind, version, migratable, descriptor)


def _text(value: Any) -> str:
    if value is None:
        return ABSENT
    if isinstance(value, Version):
        return value.text
    if isinstance(value, frozenset):
        return "+".join(sorted(value)) or ABSENT
    return str(value)


def _version_key(version: Version | None) -> tuple[Any, ...]:
    return (0,) if version is None else (1, version.key)


def _codes(values: Sequence[Any], key: Callable[[Any], Any] = lambda v: v) -> tuple[list[Any], np.ndarray]:
    """The distinct values (sorted by ``key``) and each value's position among them."""
    distinct = sorted(set(values), key=key)
    position = {value: code for code, value in enumerate(distinct)}
    return distinct, np.fromiter(map(position.__getitem__, values), np.int64, len(values))


class _Sums:
    """Weights summed by integer key, a chunk at a time, without a dense array of every key."""

    def __init__(self) -> None:
        self.keys: list[np.ndarray] = []
        self.sums: list[np.ndarray] = []

    def add(self, keys: np.ndarray, weights: np.ndarray) -> None:
        if len(keys):
            distinct, inverse = np.unique(keys, return_inverse=True)
            self.keys.append(distinct)
            self.sums.append(np.bincount(inverse.ravel(), weights=weights.ravel().astype(np.float64)))

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """The distinct keys, sorted, and each one's sum."""
        if not self.keys:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        distinct, inverse = np.unique(np.concatenate(self.keys), return_inverse=True)
        return distinct, np.bincount(inverse, weights=np.concatenate(self.sums), minlength=len(distinct))


# -- the report's figures ------------------------------------------------------------------
def report_figures(
    result: MatchResult,
    inputs: dict[str, Any] | None = None,
    *,
    now: datetime | None = None,
    max_class_pairs: int = MAX_CLASS_PAIRS,
    drain: Plan | None = None,
) -> dict[str, Any]:
    """Every number of the report, as JSON-safe data (ints, floats, strings, lists, dicts).

    ``inputs``: what to say about the inputs and the policy (``input_facts``), shown as given.
    ``drain``: a drain plan (:func:`fastmatch.plan`) of these fleets, whose figures
    (:func:`drain_figures`) the report adds as ``drain``; without one there is no ``drain``.
    """
    data = _Figures(result, max_class_pairs).data(inputs or {}, now or datetime.now(timezone.utc))
    if drain is not None:
        data["drain"] = drain_figures(drain)
    return data


def drain_figures(plan: Plan) -> dict[str, Any]:
    """A drain plan as the report shows it: its summary (counts, solver and status), the VMs and
    devices moved in each wave, and every unplaced VM with its reasons (as ``Plan.unplaced``)."""
    vm_waves = plan.vm_wave[plan.vm_placed]
    waves = int(plan.move_wave.max(initial=0))
    vms = np.bincount(vm_waves, minlength=waves + 1)[1:]
    devices = np.bincount(plan.move_wave, minlength=waves + 1)[1:]
    return {
        "summary": plan.summary,
        "waves": [{"wave": w + 1, "vms": int(v), "devices": int(d)} for w, (v, d) in enumerate(zip(vms.tolist(), devices.tolist()))],
        "unplaced": plan.unplaced,
    }


class _Figures:
    def __init__(self, result: MatchResult, max_class_pairs: int) -> None:
        self.result = result
        n_source_classes, n_target_classes = result.class_shape
        self.sources = _Side.of(result, result.sources, result.source_class, n_source_classes)
        self.targets = _Side.of(result, result.targets, result.target_class, n_target_classes)
        available = result.rules.available
        self.target_available = np.bincount(result.target_class[available], minlength=n_target_classes)
        self.types, codes = _codes(self.sources.type + self.targets.type)
        self.source_type, self.target_type = codes[:n_source_classes], codes[n_source_classes:]
        self.rows = self._rows(max_class_pairs)

    def _rows(self, max_class_pairs: int) -> np.ndarray:
        """The source classes whose rows the class-level figures read: all, or a seeded sample."""
        n_source_classes, n_target_classes = self.result.class_shape
        if n_source_classes * n_target_classes <= max_class_pairs:
            return np.arange(n_source_classes, dtype=np.int64)
        wanted = max(1, max_class_pairs // max(1, n_target_classes))
        return np.sort(np.random.default_rng(0).choice(n_source_classes, size=wanted, replace=False))

    @property
    def sampled(self) -> bool:
        return len(self.rows) < self.result.class_shape[0]

    def _row_blocks(self, rows: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(classes, reasons)``: the class-level reason masks (0: compatible) of rows, in chunks."""
        per_chunk = max(1, PAIRS_PER_CHUNK // max(1, self.result.class_shape[1]))
        row = self.result._outputs.row
        for start in range(0, len(rows), per_chunk):
            classes = rows[start : start + per_chunk]
            yield classes, outcome_reasons(np.stack([row(int(c)) for c in classes.tolist()]))

    def data(self, inputs: dict[str, Any], now: datetime) -> dict[str, Any]:
        result = self.result
        counted = _Counted(self)
        available_counts = result.counts()
        stranded = np.flatnonzero(available_counts == 0)
        data = {
            "fastmatch_version": __version__,
            "generated": now.isoformat(timespec="seconds"),
            "inputs": inputs,
            "policy": _policy_facts(result.policy),
            "summary": self._summary(stranded, available_counts, counted),
            "sample": None,
            "stranded": self._stranded(stranded),
            "reasons": counted.reasons(),
            "heatmap": counted.heatmap(),
            "versions": counted.versions(),
            "capacity": counted.capacity(),
        }
        if self.sampled:
            data["sample"] = {
                "source_classes": len(self.rows),
                "of": result.class_shape[0],
                "source_devices": int(self.sources.size[self.rows].sum()),
                "note": "reasons, heatmap, versions and capacity's reach are estimated from these source classes",
            }
        return data

    def _summary(self, stranded: np.ndarray, available_counts: np.ndarray, counted: "_Counted") -> dict[str, Any]:
        result = self.result
        n, m = result.shape

        def side(devices: DeviceSet, classes: int) -> dict[str, int]:
            return {
                "devices": len(devices),
                "hosts": len(devices.host_codes[0]) - 1,  # less the empty host, always listed first
                "descriptors": len(devices.descriptors),
                "classes": classes,
            }

        targets = side(result.targets, result.class_shape[1])
        targets["available"] = int(result.rules.available.sum())
        targets["instances"] = int(result.targets.capacities.sum())
        # Read whole, the class-level sums are exact; from a sample, the kernel counts them.
        compatible = _count(counted.compatible_pairs()) if not self.sampled else int(result.compatible_counts().sum())
        return {
            "sources": side(result.sources, result.class_shape[0]),
            "targets": targets,
            "pairs": n * m,
            "compatible_pairs": compatible,
            "available_pairs": int(available_counts.sum()),
            "stranded_sources": len(stranded),
        }

    # -- stranded sources, grouped by descriptor class --------------------------------------
    def _stranded(self, stranded: np.ndarray) -> dict[str, Any]:
        result = self.result
        classes = result.source_class[stranded]
        order = np.argsort(classes, kind="stable")
        distinct, first, counts = np.unique(classes[order], return_index=True, return_counts=True)
        by_size = np.lexsort((distinct, -counts))  # largest group first, then class order
        ids = result.sources.ids
        groups = []
        for rank, g in enumerate(by_size.tolist()):
            c = int(distinct[g])
            members = stranded[order[first[g] : first[g] + counts[g]]]
            groups.append(
                {
                    "descriptor": self._label(self.sources, c),
                    "attributes": self.sources.descriptor[c],
                    "migratable": self.sources.migratable[c],
                    "devices": int(counts[g]),
                    "reasons": self._why_stranded(c, int(members[0])) if rank < MAX_STRANDED_GROUPS_EXPLAINED else None,
                    "sample_ids": [ids[i] for i in members[:SAMPLE_IDS].tolist()],
                }
            )
        return {
            "devices": len(stranded),
            "groups": groups,
            "explained_groups": min(len(groups), MAX_STRANDED_GROUPS_EXPLAINED),
            "ids": [ids[i] for i in stranded.tolist()],
            "hosts": [result.sources.hosts[i] for i in stranded.tolist()],
            "group": [int(g) for g in np.argsort(by_size)[np.searchsorted(distinct, classes)].tolist()],
        }

    def _why_stranded(self, c: int, i: int) -> list[dict[str, Any]]:
        """Why source ``i`` (of class ``c``, the first of its group) has nowhere to go: for each
        reason, how many target devices of its type it rules out (of every target when none has
        its type), and how many compatible ones have no capacity."""
        result = self.result
        rules, target_class = result.rules, result.target_class
        masks = outcome_reasons(result._outputs.row(c))
        looked = self.target_type == self.source_type[c]
        lead = []
        if not looked.any():
            lead = [{"reason": NO_TARGET_OF_TYPE, "targets": len(result.targets)}]
            looked[:] = True
        words: collections.Counter[str] = collections.Counter()
        failing = np.flatnonzero(looked & (masks != 0))
        distinct, inverse = np.unique(masks[failing], return_inverse=True)
        for mask, weight in zip(distinct.tolist(), np.bincount(inverse.ravel(), weights=self.targets.size[failing]).tolist()):
            for name in reason_names(mask, result.attributes):
                words[name] += int(weight)
        # The device rules: the targets on its host, and the target that is the device itself.
        host, twin = int(rules.source_host[i]), int(rules.source_twin[i])
        near = np.flatnonzero(rules.targets.host == host) if rules.exclude_same_host and host > 0 else np.zeros(0, np.int64)
        near = near[looked[target_class[near]]]
        twins = np.array([twin] if twin >= 0 and looked[target_class[twin]] else [], dtype=np.int64)
        words["SAME_HOST"] += len(near)
        words["SAME_DEVICE"] += len(twins)
        taken = np.union1d(near, twins)
        compatible = looked & (masks == 0)
        unavailable = int((self.targets.size - self.target_available)[compatible].sum())
        unavailable -= int((compatible[target_class[taken]] & ~rules.available[taken]).sum())
        words[NO_CAPACITY] += unavailable
        ranked = sorted(((name, n) for name, n in words.items() if n), key=lambda kv: (-kv[1], kv[0]))
        return lead + [{"reason": name, "targets": n} for name, n in ranked]

    def _label(self, side: _Side, c: int) -> str:
        version = side.version[c]
        parts = [side.vendor[c], side.type[c], version.text if version is not None else ABSENT]
        return " ".join(parts) + ("" if side.migratable[c] else " (not migratable)")


def _policy_facts(policy: Policy) -> dict[str, Any]:
    return {
        "direction": policy.direction,
        "records": policy.records,
        "prefer": policy.prefer,
        "exclude_same_host": policy.exclude_same_host,
        "opaque": policy.opaque,
        "score_type": policy.score_type,
        "score_version": policy.score_version,
    }


class _Counted:
    """The class-level figures, weighted by devices, with the device rules taken off.

    Read once over the rows (source classes) the figures use: compatible class pairs give the
    heatmap, the version cells and each class's reach per target type; failing ones give the
    reason counts. Then the (host, class) groups add what the device rules change."""

    def __init__(self, figures: _Figures) -> None:
        self.f = figures
        result = figures.result
        n_target_classes = result.class_shape[1]
        rows = figures.rows
        self.row_of = np.full(result.class_shape[0], -1, dtype=np.int64)
        self.row_of[rows] = np.arange(len(rows))
        self.n_types = len(figures.types)
        self.heat = _HeatmapGroups(figures)
        self.version_groups = _VersionGroups(figures)
        # What the sums below add up, from the rows read.
        self.compatible = np.zeros(len(rows), dtype=np.int64)  # compatible target devices per row
        self.reach = np.zeros((len(rows), self.n_types), dtype=np.int64)  # available ones per type
        self.heat_pairs = np.zeros(self.heat.shape, dtype=np.float64)
        self.version_pairs = _Sums()
        self.failing = np.zeros(64)  # failing pairs per reason bit
        self.failing_same = np.zeros(64)
        self.compatible_rows = np.zeros((len(rows), n_target_classes), dtype=bool)
        for classes, masks in figures._row_blocks(rows):
            self._add_rows(classes, masks)
        self.excluded = _Excluded(self)

    def _add_rows(self, classes: np.ndarray, masks: np.ndarray) -> None:
        f = self.f
        sources, targets = f.sources, f.targets
        at = self.row_of[classes]
        compatible = masks == 0
        self.compatible_rows[at] = compatible
        r, d = np.nonzero(compatible)
        c = classes[r]
        weight = sources.size[c] * targets.size[d]
        self.compatible[at] = compatible @ targets.size
        self.reach[at] += np.bincount(
            r * self.n_types + f.target_type[d], weights=f.target_available[d], minlength=len(classes) * self.n_types
        ).reshape(len(classes), self.n_types).astype(np.int64)
        self.heat_pairs += np.bincount(
            self.heat.source[c] * self.heat.shape[1] + self.heat.target[d], weights=weight, minlength=self.heat_pairs.size
        ).reshape(self.heat.shape)
        same = f.source_type[c] == f.target_type[d]
        self.version_pairs.add(self.version_groups.key(c[same], d[same]), weight[same])
        pair_weight = sources.size[classes][:, None].astype(np.float64) * targets.size[None, :]
        self.failing += _bit_weights(masks, pair_weight)
        same_type = f.source_type[classes][:, None] == f.target_type[None, :]
        self.failing_same += _bit_weights(masks[same_type], pair_weight[same_type])

    # -- the figures ------------------------------------------------------------------------
    def _scale(self) -> float:
        """Sampled rows stand for every source device: their sums are scaled up."""
        f = self.f
        return len(f.result.sources) / max(1, int(f.sources.size[f.rows].sum()))

    def compatible_pairs(self) -> float:
        """Compatible device pairs of the rows read."""
        return float((self.compatible * self.f.sources.size[self.f.rows]).sum()) - self.excluded.compatible_pairs

    def reasons(self) -> dict[str, Any]:
        f = self.f
        names = f.result.attributes
        scale = self._scale()
        rows_pairs = int(f.sources.size[f.rows].sum()) * len(f.result.targets)
        compatible = self.compatible_pairs()
        same_type_pairs = float(
            (np.bincount(f.source_type[f.rows], weights=f.sources.size[f.rows], minlength=self.n_types)
             * np.bincount(f.target_type, weights=f.targets.size, minlength=self.n_types)).sum()
        )
        # Every same-type compatible pair is in one version cell.
        same_type_compatible = self.version_pairs.result()[1].sum() - self.excluded.compatible_same_type

        def counted(bits: np.ndarray, rule_key: str) -> list[dict[str, Any]]:
            # Each reason name is one bit of the mask (attributes past bit 58 share one name).
            words: collections.defaultdict[str, float] = collections.defaultdict(float)
            for bit in np.flatnonzero(bits).tolist():
                (name,) = reason_names(1 << bit, names)
                words[name] += bits[bit]
            for name in ("SAME_HOST", "SAME_DEVICE"):
                words[name] += self.excluded.rule_pairs[(name, rule_key)]
            return [
                {"reason": name, "pairs": _count(weight * scale)}
                for name, weight in sorted(words.items(), key=lambda kv: (-kv[1], kv[0]))
                if weight
            ]

        return {
            "all": {
                "pairs": _count(rows_pairs * scale),
                "failing_pairs": _count((rows_pairs - compatible) * scale),
                "counts": counted(self.failing, "all"),
            },
            "same_type": {
                "pairs": _count(same_type_pairs * scale),
                "failing_pairs": _count((same_type_pairs - same_type_compatible) * scale),
                "counts": counted(self.failing_same, "same_type"),
            },
        }

    def heatmap(self) -> dict[str, Any]:
        heat, f = self.heat, self.f
        scale = self._scale()
        compatible = (self.heat_pairs - self.excluded.heat_pairs) * scale
        source_devices = np.bincount(heat.source, weights=f.sources.size, minlength=heat.shape[0])
        sampled_devices = np.bincount(heat.source[f.rows], weights=f.sources.size[f.rows], minlength=heat.shape[0])
        target_devices = np.bincount(heat.target, weights=f.targets.size, minlength=heat.shape[1])
        pairs = (sampled_devices * scale)[:, None] * target_devices[None, :]
        return {
            "grouped_by": heat.level,
            "source_groups": [{"group": g, "devices": _count(n)} for g, n in zip(heat.source_labels, source_devices)],
            "target_groups": [{"group": g, "devices": _count(n)} for g, n in zip(heat.target_labels, target_devices)],
            "compatible_pairs": [[_count(v) for v in row] for row in compatible.tolist()],
            "pairs": [[_count(v) for v in row] for row in pairs.tolist()],
        }

    def versions(self) -> list[dict[str, Any]]:
        groups = self.version_groups
        scale = self._scale()
        (kept, weight), (taken, taken_weight) = self.version_pairs.result(), self.excluded.version_pairs.result()
        return groups.per_type(np.concatenate([kept, taken]), np.concatenate([weight, -taken_weight]), scale)

    def capacity(self) -> list[dict[str, Any]]:
        f = self.f
        scale = self._scale()
        sources = np.bincount(f.source_type, weights=f.sources.size, minlength=self.n_types)
        targets = np.bincount(f.target_type, weights=f.targets.size, minlength=self.n_types)
        available = np.bincount(f.target_type, weights=self.f.target_available, minlength=self.n_types)
        instances = np.bincount(
            f.target_type[f.result.target_class], weights=f.result.targets.capacities.astype(np.float64), minlength=self.n_types
        )
        reaching = self.excluded.reaching() * scale
        order = np.lexsort((np.arange(self.n_types), -(sources + targets)))
        return [
            {
                "type": f.types[t],
                "source_devices": _count(sources[t]),
                "sources_reaching": _count(reaching[t]),
                "target_devices": _count(targets[t]),
                "available_targets": _count(available[t]),
                "instances": _count(instances[t]),
            }
            for t in order.tolist()
        ]


_BYTE_BITS = (np.arange(256)[:, None] >> np.arange(8)[None, :]) & 1  # (byte value, bit) -> 0/1


def _bit_weights(masks: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """float64 (64,): for each bit, the summed weights of the masks that have it. A histogram
    per byte of the masks instead of a sort of them: eight passes of bincount."""
    planes = np.ascontiguousarray(masks, dtype="<u8").reshape(-1).view(np.uint8).reshape(-1, 8).T.copy()
    weights = np.ascontiguousarray(np.broadcast_to(weights, masks.shape), dtype=np.float64).reshape(-1)
    # Most planes are all zero (a policy's few attribute bits, then the fixed reasons at the top).
    return np.concatenate(
        [np.bincount(plane, weights=weights, minlength=256) @ _BYTE_BITS if plane.any() else np.zeros(8) for plane in planes]
    )


def _count(value: float) -> int:
    return int(round(value))


class _HeatmapGroups:
    """Each class's group on the heatmap's axes: (vendor, type, version) when both sides have
    at most MAX_GROUPS of them, else (vendor, type); past MAX_GROUPS even then, the largest
    groups and one "other"."""

    LEVELS = (("vendor", "type", "version"), ("vendor", "type"))

    def __init__(self, f: _Figures) -> None:
        for level in self.LEVELS:
            keys = [self._keys(side, level) for side in (f.sources, f.targets)]
            if all(len(set(k)) <= MAX_GROUPS for k in keys) or level == self.LEVELS[-1]:
                break
        self.level = list(level)
        (self.source_labels, self.source), (self.target_labels, self.target) = (
            self._grouped(k, side.size) for k, side in zip(keys, (f.sources, f.targets))
        )
        self.shape = (len(self.source_labels), len(self.target_labels))

    @staticmethod
    def _keys(side: _Side, level: tuple[str, ...]) -> list[tuple[Any, ...]]:
        fields = {"vendor": side.vendor, "type": side.type, "version": side.version}
        return list(zip(*(fields[name] for name in level)))

    @staticmethod
    def _grouped(keys: list[tuple[Any, ...]], size: np.ndarray) -> tuple[list[str], np.ndarray]:
        distinct, codes = _codes(keys, key=lambda k: tuple(_version_key(p) if not isinstance(p, str) else (2, p) for p in k))
        devices = np.bincount(codes, weights=size, minlength=len(distinct))
        labels = [" ".join(p.text if isinstance(p, Version) else ABSENT if p is None else p for p in k) for k in distinct]
        if len(distinct) <= MAX_GROUPS:
            return labels, codes
        kept = np.sort(np.lexsort((np.arange(len(distinct)), -devices))[: MAX_GROUPS - 1])
        new_code = np.full(len(distinct), len(kept), dtype=np.int64)
        new_code[kept] = np.arange(len(kept))
        return [labels[k] for k in kept.tolist()] + [f"other ({len(distinct) - len(kept)} groups)"], new_code[codes]


class _VersionGroups:
    """Each class's (type, version) on either side, for the version-skew view."""

    def __init__(self, f: _Figures) -> None:
        self.f = f
        self.source_keys, self.source = _codes(list(zip(f.source_type.tolist(), f.sources.version)), key=self._order)
        self.target_keys, self.target = _codes(list(zip(f.target_type.tolist(), f.targets.version)), key=self._order)

    @staticmethod
    def _order(key: tuple[int, Version | None]) -> tuple[Any, ...]:
        return (key[0], _version_key(key[1]))

    def key(self, source_classes: np.ndarray, target_classes: np.ndarray) -> np.ndarray:
        keys: np.ndarray = self.source[source_classes] * len(self.target_keys) + self.target[target_classes]
        return keys

    def per_type(self, keys: np.ndarray, weights: np.ndarray, scale: float) -> list[dict[str, Any]]:
        """One entry per type that both sides have: its source and target versions (the
        MAX_VERSIONS - 1 with most devices, then one "other"), and the compatible pairs of each
        (source version, target version): ``weights`` summed by cell ``keys`` (``key``)."""
        f = self.f
        source_devices = np.bincount(self.source, weights=f.sources.size, minlength=len(self.source_keys))
        sampled = np.bincount(self.source[f.rows], weights=f.sources.size[f.rows], minlength=len(self.source_keys))
        target_devices = np.bincount(self.target, weights=f.targets.size, minlength=len(self.target_keys))
        source_type = np.array([t for t, _ in self.source_keys], dtype=np.int64)
        target_type = np.array([t for t, _ in self.target_keys], dtype=np.int64)
        width = len(self.target_keys)
        cell_type = source_type[keys // width] if len(keys) else keys
        out = []
        for t, name in enumerate(f.types):
            rows, row_labels, row_of = _folded(np.flatnonzero(source_type == t), source_devices, self.source_keys)
            columns, column_labels, column_of = _folded(np.flatnonzero(target_type == t), target_devices, self.target_keys)
            if not len(rows) or not len(columns):
                continue
            mine = cell_type == t
            cells = np.zeros((len(row_labels), len(column_labels)))
            np.add.at(cells, (row_of[keys[mine] // width], column_of[keys[mine] % width]), weights[mine])
            row_devices = np.bincount(row_of[rows], weights=source_devices[rows], minlength=len(row_labels))
            row_sampled = np.bincount(row_of[rows], weights=sampled[rows], minlength=len(row_labels))
            column_devices = np.bincount(column_of[columns], weights=target_devices[columns], minlength=len(column_labels))
            out.append(
                {
                    "type": name,
                    "source_versions": [{"version": v, "devices": _count(n)} for v, n in zip(row_labels, row_devices)],
                    "target_versions": [{"version": v, "devices": _count(n)} for v, n in zip(column_labels, column_devices)],
                    "compatible_pairs": [[_count(v * scale) for v in row] for row in cells.tolist()],
                    "pairs": [[_count(a * scale * b) for b in column_devices.tolist()] for a in row_sampled.tolist()],
                }
            )
        out.sort(key=lambda entry: -sum(v["devices"] for v in entry["source_versions"]))
        return out


def _folded(members: np.ndarray, devices: np.ndarray, keys: list[tuple[Any, ...]]) -> tuple[np.ndarray, list[str], np.ndarray]:
    """``(members, labels, position)``: the versions of one type in version order, the
    MAX_VERSIONS - 1 with most devices kept and the rest folded into one "other"; ``position``
    maps every version code to its row (only members' entries are meaningful)."""
    position = np.zeros(len(keys), dtype=np.int64)
    if len(members) <= MAX_VERSIONS:
        position[members] = np.arange(len(members))
        return members, [_text(keys[k][1]) for k in members.tolist()], position
    kept = np.sort(members[np.lexsort((members, -devices[members]))[: MAX_VERSIONS - 1]])
    position[members] = len(kept)
    position[kept] = np.arange(len(kept))
    labels = [_text(keys[k][1]) for k in kept.tolist()] + [f"other ({len(members) - len(kept)} versions)"]
    return members, labels, position


def _group_rows(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """The distinct rows of ``columns`` (sorted by the first, then the next...): their values,
    how many rows each has, and each row's group. A lexsort: np.unique(axis=0) sorts rows as
    bytes, several times slower."""
    order = np.lexsort(columns[::-1])
    ordered = [column[order] for column in columns]
    change = np.ones(len(order), dtype=bool)
    if len(order):
        change[1:] = np.logical_or.reduce([column[1:] != column[:-1] for column in ordered])
    starts = np.flatnonzero(change)
    group_of = np.empty(len(order), dtype=np.int64)
    group_of[order] = np.cumsum(change) - 1
    return [column[starts] for column in ordered], np.diff(np.append(starts, len(order))), group_of


class _Excluded:
    """What the device rules change in the class-level sums (docs/model.md section 6, rule 1): a source
    never goes to itself, nor, with ``exclude_same_host``, to a target on its own host.

    Sources are grouped into *units* (host, class, and the target that is the same device, if
    any); a unit's host meets only the (host, class) groups of the targets on that host."""

    def __init__(self, counted: _Counted) -> None:
        f = counted.f
        result, rules = f.result, f.result.rules
        self.counted = counted
        self.compatible_pairs = 0.0
        self.compatible_same_type = 0.0
        self.heat_pairs = np.zeros(counted.heat.shape)
        self.version_pairs = _Sums()
        self.rule_pairs: collections.defaultdict[tuple[str, str], float] = collections.defaultdict(float)  # (reason, kind)
        self.taken = _Sums()  # (unit, target type) -> available compatible targets the rules take

        host = np.where(rules.exclude_same_host & (rules.source_host > 0), rules.source_host, 0)
        twin = rules.source_twin
        keep = (counted.row_of[result.source_class] >= 0) & ((host > 0) | (twin >= 0))
        (self.unit_host, self.unit_class, self.unit_twin), self.unit_size, _ = _group_rows(
            host[keep], result.source_class[keep], twin[keep]
        )
        self._same_host()
        self._same_device()

    def _same_host(self) -> None:
        f = self.counted.f
        targets = f.result.rules.targets
        on_host = targets.host > 0
        (group_host, group_class), counts, group_of = _group_rows(targets.host[on_host], f.result.target_class[on_host])
        available = np.bincount(group_of[targets.available[on_host]], minlength=len(counts))
        units = np.flatnonzero(self.unit_host > 0)
        self._count_same_host(units, targets.host[on_host], f.result.target_class[on_host])
        start = np.searchsorted(group_host, self.unit_host[units], side="left")
        lengths = np.searchsorted(group_host, self.unit_host[units], side="right") - start
        ends = np.cumsum(lengths)
        compatible_rows, row_of = self.counted.compatible_rows, self.counted.row_of
        first = 0
        while first < len(units):
            last = max(first + 1, int(np.searchsorted(ends, (ends[first - 1] if first else 0) + PAIRS_PER_CHUNK, side="right")))
            span = slice(first, last)
            unit = np.repeat(units[span], lengths[span])
            # Each unit's run of tuples, from its host's first (host, class) group on.
            done = ends[first - 1] if first else 0
            offset = np.arange(done, done + len(unit)) - np.repeat(ends[span] - lengths[span], lengths[span])
            offset += np.repeat(start[span], lengths[span])
            # Only the compatible tuples change anything: the rest fail at class level already.
            kept = compatible_rows[row_of[self.unit_class[unit]], group_class[offset]]
            unit, offset = unit[kept], offset[kept]
            self._take(unit, group_class[offset], self.unit_size[unit] * counts[offset], available[offset])
            first = last

    def _count_same_host(self, units: np.ndarray, target_host: np.ndarray, target_class: np.ndarray) -> None:
        """SAME_HOST's pairs (every source and target on one host), and those of one type:
        from devices per host and per (host, type), no pair visited."""
        f = self.counted.f
        source_host, source_weight = self.unit_host[units], self.unit_size[units].astype(np.float64)
        for kind, source_key, target_key in (
            ("all", source_host, target_host),
            ("same_type", source_host * self.counted.n_types + f.source_type[self.unit_class[units]],
             target_host * self.counted.n_types + f.target_type[target_class]),
        ):
            sources, targets = _Sums(), _Sums()
            sources.add(source_key, source_weight)
            targets.add(target_key, np.ones(len(target_key)))
            (source_keys, per_source), (target_keys, per_target) = sources.result(), targets.result()
            at = np.minimum(np.searchsorted(target_keys, source_keys), max(0, len(target_keys) - 1))
            both = target_keys[at] == source_keys if len(target_keys) else np.zeros(len(source_keys), dtype=bool)
            self.rule_pairs[("SAME_HOST", kind)] += float((per_source[both] * per_target[at[both]]).sum())

    def _same_device(self) -> None:
        result = self.counted.f.result
        targets = result.rules.targets
        units = np.flatnonzero(self.unit_twin >= 0)
        twin = self.unit_twin[units]
        d = result.target_class[twin]
        c = self.unit_class[units]
        self.rule_pairs[("SAME_DEVICE", "all")] += len(units)
        self.rule_pairs[("SAME_DEVICE", "same_type")] += int((self.counted.f.source_type[c] == self.counted.f.target_type[d]).sum())
        # A twin on the unit's own host is that rule's pair already: taken once.
        covered = (self.unit_host[units] > 0) & (targets.host[twin] == self.unit_host[units])
        kept = ~covered & self.counted.compatible_rows[self.counted.row_of[c], d]
        units, twin = units[kept], twin[kept]
        ones = np.ones(len(units), dtype=np.int64)
        self._take(units, result.target_class[twin], ones, targets.available[twin].astype(np.int64))

    def _take(self, unit: np.ndarray, d: np.ndarray, weight: np.ndarray, available: np.ndarray) -> None:
        """Compatible pairs (a unit's devices, target class ``d``) the rules exclude: ``weight``
        of them; ``available``: the targets with capacity each of the unit's devices loses."""
        counted, f = self.counted, self.counted.f
        c = self.unit_class[unit]
        same = f.source_type[c] == f.target_type[d]
        self.compatible_pairs += float(weight.sum())
        self.compatible_same_type += float(weight[same].sum())
        heat = counted.heat
        self.heat_pairs += np.bincount(
            heat.source[c] * heat.shape[1] + heat.target[d], weights=weight, minlength=self.heat_pairs.size
        ).reshape(heat.shape)
        self.version_pairs.add(counted.version_groups.key(c[same], d[same]), weight[same])
        self.taken.add(unit * counted.n_types + f.target_type[d], available)

    def reaching(self) -> np.ndarray:
        """Per target type, the source devices (of the rows read) with at least one compatible
        target of that type that has capacity and that the rules leave them."""
        counted, f = self.counted, self.counted.f
        rows = f.rows
        reach = counted.reach  # (rows, types): available compatible target devices
        reaching: np.ndarray = ((reach > 0) * f.sources.size[rows][:, None]).sum(axis=0).astype(np.float64)
        keys, amount = self.taken.result()
        if len(keys):
            unit, kind = keys // counted.n_types, keys % counted.n_types
            before = reach[counted.row_of[self.unit_class[unit]], kind]
            lost = (before > 0) & (before - amount <= 0)
            np.subtract.at(reaching, kind[lost], self.unit_size[unit[lost]])
        return reaching


def input_facts(path: str | os.PathLike[str] | None, *, default: str = "") -> dict[str, Any]:
    """What the report says about one input: its name, and for a regular file its size and
    SHA-256 (read again here; a pipe or standard input, read once, is only named)."""
    if path is None:
        return {"name": default, "bytes": None, "sha256": None, "note": "built in"}
    name = "<stdin>" if str(path) == STDIN else str(path)
    try:
        mode = os.stat(path).st_mode if str(path) != STDIN else None
    except OSError:
        mode = None
    if mode is None or not stat.S_ISREG(mode):
        kind = "a directory" if mode is not None and stat.S_ISDIR(mode) else "not a regular file: read once, not hashed"
        return {"name": name, "bytes": None, "sha256": None, "note": kind}
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return {"name": name, "bytes": size, "sha256": digest.hexdigest(), "note": None}
