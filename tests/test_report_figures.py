"""The report's figures against a dense computation: every pair of small fleets, visited one
by one through the dense reason masks (which carry the device rules) and reason_names."""

from __future__ import annotations

import collections
import random

import numpy as np
import pytest

import fastmatch
from fastmatch.report import figures as figures_module
from fastmatch.report import report_figures
from fastmatch.report.figures import ABSENT, NO_CAPACITY, NO_TARGET_OF_TYPE
from fastmatch.values import Version


def _fleet(rng: random.Random, n: int, prefix: str, shared_ids: int = 0):
    """Small fleets whose pairs fail for many reasons: types, versions, vendors, records,
    hosts shared by the two sides, ids shared by the two sides, capacities 0 to 2."""
    records = []
    for k in range(n):
        vendor = rng.choice(["i915", "nvidia", ""])
        record = {
            "id": f"shared-{k}" if k < shared_ids else f"{prefix}-{k}",
            "host": rng.choice(["", "h1", "h2", "h3", "h4"]),
            "self": {
                "vendor_driver": vendor,
                "mdev_type": rng.choice(["a", "b", "c", ""]),
                "software_version": rng.choice(["1.0.1", "1.1.4", "1.2", "2.0", ""]),
                "pv_mode": rng.choice(["none", "none+ppgtt", ""]),
            },
            "capacity": rng.choice([0, 1, 1, 2]),
        }
        if rng.random() < 0.25:
            record["compatible"] = [{"mdev_type": ["a", "b"], "software_version": "*", "vendor_driver": "*"}]
        if rng.random() < 0.1:
            record["migratable"] = False
        records.append(record)
    return records


def _text(value) -> str:
    if value is None:
        return ABSENT
    if isinstance(value, Version):
        return value.text
    return str(value)


class Dense:
    """The figures computed pair by pair, for the devices ``rows`` (all by default)."""

    def __init__(self, result: fastmatch.MatchResult, rows=None) -> None:
        self.result = result
        n, m = result.shape
        self.rows = np.arange(n) if rows is None else rows
        self.compatible = result.reasons == 0
        self.available = result.targets.capacities > 0
        self.source_values = [result.sources.descriptor(i).values for i in range(n)]
        self.target_values = [result.targets.descriptor(j).values for j in range(m)]
        self.source_type = [_text(v.get("mdev_type")) for v in self.source_values]
        self.target_type = [_text(v.get("mdev_type")) for v in self.target_values]

    @staticmethod
    def label(values, level) -> str:
        parts = {
            "vendor": values.get("vendor_driver", values.get("device_api")),
            "type": values.get("mdev_type"),
            "version": values.get("software_version"),
        }
        return " ".join(_text(parts[name]) for name in level)

    def reasons(self):
        result = self.result
        counts = {"all": collections.Counter(), "same_type": collections.Counter()}
        pairs = collections.Counter()
        failing = collections.Counter()
        for i in self.rows.tolist():
            for j in range(result.shape[1]):
                kinds = ["all"] + (["same_type"] if self.source_type[i] == self.target_type[j] else [])
                for kind in kinds:
                    pairs[kind] += 1
                    if not self.compatible[i, j]:
                        failing[kind] += 1
                        counts[kind].update(result.reason_names(i, j))
        return pairs, failing, counts

    def heatmap(self, level):
        cells = collections.Counter()
        for i in self.rows.tolist():
            for j in np.flatnonzero(self.compatible[i]).tolist():
                cells[(self.label(self.source_values[i], level), self.label(self.target_values[j], level))] += 1
        return cells

    def versions(self):
        cells = collections.Counter()
        for i in self.rows.tolist():
            for j in np.flatnonzero(self.compatible[i]).tolist():
                if self.source_type[i] == self.target_type[j]:
                    cells[(
                        self.source_type[i],
                        _text(self.source_values[i].get("software_version")),
                        _text(self.target_values[j].get("software_version")),
                    )] += 1
        return cells

    def reaching(self):
        reach = collections.Counter()
        for i in self.rows.tolist():
            for kind in {self.target_type[j] for j in np.flatnonzero(self.compatible[i] & self.available).tolist()}:
                reach[kind] += 1
        return reach

    def why_stranded(self, i: int):
        """The reasons source i's same-type targets fail, and its compatible ones without capacity."""
        result = self.result
        looked = [j for j in range(result.shape[1]) if self.target_type[j] == self.source_type[i]]
        lead = []
        if not looked:
            lead = [(NO_TARGET_OF_TYPE, result.shape[1])]
            looked = list(range(result.shape[1]))
        words = collections.Counter()
        for j in looked:
            if self.compatible[i, j]:
                words[NO_CAPACITY] += not self.available[j]
            else:
                words.update(result.reason_names(i, j))
        return lead + sorted(((w, n) for w, n in words.items() if n), key=lambda kv: (-kv[1], kv[0]))


def _scenarios():
    for seed in range(4):
        for exclude_same_host in (True, False):
            yield seed, exclude_same_host


def _match(seed: int, exclude_same_host: bool, n: int = 50, m: int = 60):
    rng = random.Random(seed)
    sources = _fleet(rng, n, "s", shared_ids=6)
    targets = _fleet(rng, m, "t", shared_ids=6)
    policy = fastmatch.Policy.from_dict({"exclude_same_host": exclude_same_host})
    return fastmatch.match(sources, targets, policy)


def _cells(figures):
    heat = figures["heatmap"]
    out = collections.Counter()
    for a, row in zip(heat["source_groups"], heat["compatible_pairs"]):
        for b, value in zip(heat["target_groups"], row):
            if value:
                out[(a["group"], b["group"])] = value
    return out


def _version_cells(figures):
    out = collections.Counter()
    for entry in figures["versions"]:
        for a, row in zip(entry["source_versions"], entry["compatible_pairs"]):
            for b, value in zip(entry["target_versions"], row):
                if value:
                    out[(entry["type"], a["version"], b["version"])] = value
    return out


def _reason_table(entries):
    return {entry["reason"]: entry["pairs"] for entry in entries}


@pytest.mark.parametrize("seed,exclude_same_host", list(_scenarios()))
def test_figures_equal_a_dense_computation(seed, exclude_same_host, implementation, monkeypatch):
    if seed == 3:  # many small chunks of rows and of (host, class) tuples
        monkeypatch.setattr(figures_module, "PAIRS_PER_CHUNK", 7)
    result = _match(seed, exclude_same_host)
    figures = report_figures(result)
    dense = Dense(result)
    n, m = result.shape
    assert figures["sample"] is None

    summary = figures["summary"]
    assert summary["pairs"] == n * m
    assert summary["compatible_pairs"] == int(dense.compatible.sum())
    assert summary["available_pairs"] == int((dense.compatible & dense.available).sum())
    stranded = np.flatnonzero(~(dense.compatible & dense.available).any(axis=1))
    assert summary["stranded_sources"] == len(stranded)
    assert summary["sources"]["hosts"] == len({h for h in result.sources.hosts if h})
    assert summary["targets"]["instances"] == int(result.targets.capacities.sum())

    pairs, failing, counts = dense.reasons()
    for kind in ("all", "same_type"):
        assert figures["reasons"][kind]["pairs"] == pairs[kind]
        assert figures["reasons"][kind]["failing_pairs"] == failing[kind]
        assert _reason_table(figures["reasons"][kind]["counts"]) == dict(counts[kind])
    assert _reason_table(figures["reasons"]["all"]["counts"]) == result.reason_counts()

    assert _cells(figures) == dense.heatmap(figures["heatmap"]["grouped_by"])
    assert _version_cells(figures) == dense.versions()

    reaching = dense.reaching()
    for entry in figures["capacity"]:
        kind = entry["type"]
        assert entry["sources_reaching"] == reaching[kind], kind
        assert entry["source_devices"] == dense.source_type.count(kind)
        assert entry["target_devices"] == dense.target_type.count(kind)
        chosen = [j for j in range(m) if dense.target_type[j] == kind]
        assert entry["available_targets"] == int(dense.available[chosen].sum())
        assert entry["instances"] == int(result.targets.capacities[chosen].sum())

    ids = result.sources.ids
    assert figures["stranded"]["ids"] == [ids[i] for i in stranded.tolist()]
    assert sum(g["devices"] for g in figures["stranded"]["groups"]) == len(stranded)
    for group in figures["stranded"]["groups"]:
        first = ids.index(group["sample_ids"][0])
        assert [(r["reason"], r["targets"]) for r in group["reasons"]] == dense.why_stranded(first)
        members = [i for i in stranded.tolist() if result.source_class[i] == result.source_class[first]]
        assert group["devices"] == len(members)
        assert group["sample_ids"] == [ids[i] for i in members[: figures_module.SAMPLE_IDS]]


def test_a_sample_of_source_classes_is_counted_exactly_and_scaled(monkeypatch):
    """Past MAX_CLASS_PAIRS, the class-level figures come from a sample of source classes: they
    equal the dense computation over the sampled classes' devices, scaled to the fleet."""
    result = _match(7, True, n=80, m=40)
    n_source_classes, n_target_classes = result.class_shape
    limit = n_target_classes * (n_source_classes // 3)
    figures = report_figures(result, max_class_pairs=limit)
    sample = figures["sample"]
    assert sample is not None and sample["source_classes"] == n_source_classes // 3
    rows = figures_module._Figures(result, limit).rows
    devices = np.flatnonzero(np.isin(result.source_class, rows))
    assert sample["source_devices"] == len(devices)
    scale = len(result.sources) / len(devices)
    dense = Dense(result, rows=devices)
    pairs, failing, counts = dense.reasons()
    for kind in ("all", "same_type"):
        assert figures["reasons"][kind]["failing_pairs"] == round(failing[kind] * scale)
        assert _reason_table(figures["reasons"][kind]["counts"]) == {k: round(v * scale) for k, v in counts[kind].items()}
    assert _cells(figures) == {k: round(v * scale) for k, v in dense.heatmap(figures["heatmap"]["grouped_by"]).items()}
    # The summary and the stranded sources stay exact.
    exact = report_figures(result)
    assert figures["summary"] == exact["summary"]
    assert figures["stranded"] == exact["stranded"]


def test_demo_fleet_figures_agree_with_the_demo():
    """The numbers `fastmatch demo` prints for the shipped fleet."""
    from importlib import resources

    data = resources.files("fastmatch")
    policy = fastmatch.Policy.default()
    with resources.as_file(data / "data/demo_sources.jsonl") as s, resources.as_file(data / "data/demo_targets.jsonl") as t:
        result = fastmatch.match(fastmatch.load(s, policy), fastmatch.load(t, policy), policy)
    figures = report_figures(result)
    assert figures["summary"]["compatible_pairs"] == 189
    assert figures["summary"]["stranded_sources"] == 10
    assert figures["reasons"]["all"]["failing_pairs"] == 1875
    assert _reason_table(figures["reasons"]["all"]["counts"])["software_version"] == 1391


def test_empty_sides_give_empty_figures():
    policy = fastmatch.Policy.default()
    one = [{"id": "a", "self": {"mdev_type": "x"}}]
    for sources, targets in (([], one), (one, []), ([], [])):
        figures = report_figures(fastmatch.match(sources, targets, policy))
        assert figures["summary"]["compatible_pairs"] == 0
        assert figures["stranded"]["devices"] == len(sources)
        assert figures["reasons"]["all"]["pairs"] == 0


def test_groups_past_the_limits_fold_into_other_without_losing_pairs(monkeypatch):
    """Past MAX_GROUPS (heatmap) and MAX_VERSIONS (version skew), the largest are kept and the
    rest add up in one "other": every compatible pair is still in exactly one cell."""
    monkeypatch.setattr(figures_module, "MAX_GROUPS", 3)
    monkeypatch.setattr(figures_module, "MAX_VERSIONS", 2)
    result = _match(5, True, n=80, m=80)
    figures = report_figures(result)
    dense = Dense(result)
    heat = figures["heatmap"]
    assert heat["grouped_by"] == ["vendor", "type"]
    for axis, side in (("source_groups", dense.source_values), ("target_groups", dense.target_values)):
        groups = heat[axis]
        assert len(groups) == 3 and groups[-1]["group"].startswith("other (")
        assert sum(g["devices"] for g in groups) == len(side)
        kept = {g["group"]: g["devices"] for g in groups[:-1]}
        labels = collections.Counter(Dense.label(values, heat["grouped_by"]) for values in side)
        assert kept == {label: labels[label] for label in kept}
        assert sorted(kept.values(), reverse=True) == sorted(labels.values(), reverse=True)[:2]
    assert sum(map(sum, heat["compatible_pairs"])) == figures["summary"]["compatible_pairs"]
    assert sum(map(sum, heat["pairs"])) == figures["summary"]["pairs"]
    per_type = collections.Counter()
    for (kind, _, _), count in dense.versions().items():
        per_type[kind] += count
    for entry in figures["versions"]:
        assert len(entry["source_versions"]) <= 2 and len(entry["target_versions"]) <= 2
        assert sum(map(sum, entry["compatible_pairs"])) == per_type[entry["type"]]
        assert sum(v["devices"] for v in entry["source_versions"]) == dense.source_type.count(entry["type"])


def test_drain_figures_count_the_plans_waves_vms_and_devices():
    """VMs of several devices, moved a few at a time: each wave's VMs and devices are those of
    the plan's moves, and the unplaced VMs are the plan's."""
    rng = random.Random(7)

    def dev(i, host, vm=None, capacity=1):
        record = {"id": i, "host": host, "capacity": capacity, "self": {"mdev_type": rng.choice("AB"), "software_version": "1.0"}}
        return {**record, "vm": vm} if vm else record

    sources = [dev(f"s{i}", f"old-{i // 2 % 3}", vm=f"vm-{i // 2}") for i in range(18)]  # 9 VMs of 2 devices
    targets = [dev(f"t{j}", f"new-{j % 4}", capacity=rng.randint(0, 2)) for j in range(12)]
    plan = fastmatch.plan(sources, targets, ["old-0", "old-1", "old-2"], max_parallel=2)
    drain = report_figures(fastmatch.match(sources, targets), drain=plan)["drain"]
    assert drain["summary"] is plan.summary and drain["unplaced"] == plan.unplaced
    moved = collections.defaultdict(lambda: [set(), 0])
    for move in plan.to_records():
        moved[move["wave"]][0].add(move["vm"])
        moved[move["wave"]][1] += 1
    assert drain["waves"] == [{"wave": w, "vms": len(vms), "devices": n} for w, (vms, n) in sorted(moved.items())]
    assert sum(w["devices"] for w in drain["waves"]) == 2 * sum(w["vms"] for w in drain["waves"]) == 2 * plan.summary["vms"]["placed"]
    assert len(drain["waves"]) > 1 and drain["unplaced"]
