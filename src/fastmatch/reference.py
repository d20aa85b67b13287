"""The plain-Python twin of the native kernel: docs/model.md sections 6-8, one pair at a time.

Deliberately naive, so that it can be trusted as the oracle the kernel is held
to. It works on device pairs, with no interning and no classes.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .devices import Descriptor, DeviceSet, fleet_attribute_order
from .policy import Policy
from .values import Version
from .reasons import (
    INCOMPATIBLE,
    NO_RECORD,
    NOT_MIGRATABLE,
    OPAQUE,
    SAME_DEVICE,
    SAME_HOST,
    SCORE_EXACT,
    SCORE_HAS_VERSION,
    SCORE_SAME_TYPE,
    attribute_bit,
    VersionScale,
    outcome_reasons,
)


def absent(policy: Policy, name: str) -> frozenset[str] | None:
    return frozenset() if policy.attribute(name).type == "set" else None


def rule_passes(rule: str, s: Any, t: Any) -> bool:
    if rule in ("dynamic", "ignore"):
        return True
    if rule == "exact":
        return bool(s == t)
    if rule == "superset":
        return bool(s <= t)
    if s is None or t is None:
        return s is None and t is None
    if rule == "version":
        return bool(t.major == s.major and t.minor >= s.minor)
    if rule == "ge":
        return bool(t >= s)
    if rule == "le":
        return bool(t <= s)
    raise AssertionError(rule)


def opaque_passes(policy: Policy, s: str | None, t: str | None, confirm: Callable[[str, str], bool] | None) -> bool:
    if policy.opaque == "ignore":
        return True
    if s is None and t is None:
        return policy.opaque == "if-present"
    if s is None or t is None:
        return False
    return confirm(s, t) if confirm is not None else s == t


class PairEvaluator:
    """Evaluates pairs of descriptors under one policy and one attribute order."""

    def __init__(self, policy: Policy, attributes: list[str], target_versions: list[Version]) -> None:
        self.policy = policy
        self.attributes = attributes
        self.rules = {a: policy.attribute(a).rule for a in attributes}
        self.bits = {a: attribute_bit(i) for i, a in enumerate(attributes)}
        self.newest_rank = {v: rank for rank, v in enumerate(sorted(set(target_versions)))}
        self.scale = VersionScale.of(target_versions)

    def value(self, d: Descriptor, name: str) -> Any:
        return d.values.get(name, absent(self.policy, name))

    def failing(self, s: Descriptor, t: Descriptor) -> set[str]:
        return {a for a in self.attributes if not rule_passes(self.rules[a], self.value(s, a), self.value(t, a))}

    def records_mask(self, holder: Descriptor, other: Descriptor, failing: set[str]) -> int:
        """The reasons one side's COMPATIBLE records give (docs/model.md sections 6.3 and 8)."""
        if not holder.records:
            return self.mask_of(failing)
        constrained = {a for r in holder.records for a in r.attrs}
        mask = self.mask_of(failing - constrained)
        def value_of(name: str) -> Any:
            return self.value(other, name)

        if self.policy.records == "override":
            ok = any(r.matches(value_of) and not failing - set(r.attrs) for r in holder.records)
        else:
            ok = any(r.matches(value_of) for r in holder.records) and not failing
        return mask if ok else mask | NO_RECORD

    def mask_of(self, names: set[str]) -> int:
        mask = 0
        for name in names:
            mask |= self.bits[name]
        return mask

    def descriptor_mask(self, s: Descriptor, t: Descriptor, confirm: Callable[[str, str], bool] | None = None) -> int:
        """Reasons that depend on the two descriptors only (not on ids or hosts)."""
        mask = 0
        if not (s.migratable and t.migratable):
            mask |= NOT_MIGRATABLE
        if not opaque_passes(self.policy, s.migration_version, t.migration_version, confirm):
            mask |= OPAQUE
        failing = self.failing(s, t)
        if self.policy.direction in ("target-accepts", "both"):
            mask |= self.records_mask(t, s, failing)
        if self.policy.direction in ("source-offers", "both"):
            mask |= self.records_mask(s, t, failing)
        return mask

    def score(self, s: Descriptor, t: Descriptor) -> int:
        policy = self.policy
        score = 0
        if all(self.value(s, a) == self.value(t, a) for a in self.attributes if self.rules[a] != "ignore"):
            score |= SCORE_EXACT
        if policy.score_type and self.value(s, policy.score_type) == self.value(t, policy.score_type):
            score |= SCORE_SAME_TYPE
        sv = s.values.get(policy.score_version) if policy.score_version else None
        tv = t.values.get(policy.score_version) if policy.score_version else None
        if sv is not None and tv is not None:
            if policy.prefer == "closest":
                score |= self.scale.score(sv.major, sv.minor, tv.major, tv.minor, tv.patch)
            else:
                score |= SCORE_HAS_VERSION | self.newest_rank[tv]
        return score


def target_versions(policy: Policy, targets: DeviceSet) -> list[Version]:
    if not policy.score_version:
        return []
    return [d.values[policy.score_version] for d in targets.descriptors if policy.score_version in d.values]


def descriptor_outcomes(
    sources: DeviceSet, targets: DeviceSet, policy: Policy, confirm: Callable[[str, str], bool] | None = None
) -> np.ndarray:
    """The outcome (see fastmatch/reasons.py) of every device pair from the two descriptors alone,
    as the kernel gives it for a class pair: each device its own class, no ids, no hosts."""
    evaluator = PairEvaluator(policy, fleet_attribute_order(policy, sources, targets), target_versions(policy, targets))
    outcomes = np.zeros((len(sources), len(targets)), dtype=np.int64)
    for i in range(len(sources)):
        s = sources.descriptor(i)
        for j in range(len(targets)):
            t = targets.descriptor(j)
            mask = evaluator.descriptor_mask(s, t, confirm)
            outcomes[i, j] = evaluator.score(s, t) if mask == 0 else mask | int(INCOMPATIBLE)
    return outcomes


def evaluate(
    sources: DeviceSet, targets: DeviceSet, policy: Policy, confirm: Callable[[str, str], bool] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Scores (int64, -1 when incompatible) and reasons (uint64) for every device pair."""
    outcomes = descriptor_outcomes(sources, targets, policy, confirm)
    reasons = outcome_reasons(outcomes)
    for i in range(len(sources)):
        for j in range(len(targets)):
            if sources.ids[i] == targets.ids[j]:
                reasons[i, j] |= np.uint64(SAME_DEVICE)
            if policy.exclude_same_host and sources.hosts[i] and sources.hosts[i] == targets.hosts[j]:
                reasons[i, j] |= np.uint64(SAME_HOST)
    return np.where(reasons == 0, outcomes, np.int64(-1)), reasons
