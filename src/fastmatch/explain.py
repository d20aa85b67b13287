"""Explanations of one pair, in words an operator understands (docs/model.md section 8)."""

from __future__ import annotations

from .devices import Descriptor
from .errors import printable
from .reasons import NOT_MIGRATABLE, OPAQUE, SAME_DEVICE, SAME_HOST
from .reference import PairEvaluator, opaque_passes
from .values import format_value

_RULE_WORDS = {
    "exact": "must be equal",
    "version": "needs the same major version and a target minor >= the source's",
    "superset": "the target's set must contain the source's",
    "ge": "the target's value must be >= the source's",
    "le": "the target's value must be <= the source's",
}


def explain_pair(
    evaluator: PairEvaluator,
    source_id: str,
    target_id: str,
    s: Descriptor,
    t: Descriptor,
    mask: int,
) -> str:
    policy = evaluator.policy
    lines = [f"{source_id} -> {target_id}: " + ("compatible" if mask == 0 else "NOT compatible")]
    if mask & SAME_DEVICE:
        lines.append("  source and target are the same device")
    if mask & SAME_HOST:
        lines.append("  source and target are on the same host (exclude_same_host = true)")
    if mask & NOT_MIGRATABLE:
        which = [name for name, d in (("source", s), ("target", t)) if not d.migratable]
        lines.append(f"  the {' and the '.join(which)} is marked migratable = false")
    if mask & OPAQUE:
        lines.append(
            f"  opaque check failed (opaque = {policy.opaque!r}): source migration_version "
            f"{format_value(s.migration_version)}, target {format_value(t.migration_version)}"
        )
    elif policy.opaque != "ignore" and s.migration_version is not None and opaque_passes(
        policy, s.migration_version, t.migration_version, None
    ):
        lines.append(f"  migration_version {s.migration_version!r} is the same on both sides")

    failing = evaluator.failing(s, t)
    directions = []
    if policy.direction in ("target-accepts", "both"):
        directions.append(("target", t, s))
    if policy.direction in ("source-offers", "both"):
        directions.append(("source", s, t))
    # A failed attribute is the rule's to report unless every record holder's records constrain it.
    holders = [holder for _, holder, _ in directions]
    for name in evaluator.attributes:
        if name in failing and not all(name in _constrained(h) for h in holders):
            lines.append("  " + _rule_failure(evaluator, name, s, t))
    for holder_name, holder, other in directions:
        if holder.records:
            lines.extend(_records_explanation(evaluator, holder_name, holder, other, failing, mask))
    for name in evaluator.attributes:
        if evaluator.rules[name] == "dynamic" and mask == 0:
            value = evaluator.value(s, name)
            lines.append(f"  {name}: the target must be configured with {format_value(value)} (rule dynamic)")
    # For a person: ids and values may hold control characters (a newline would forge a line).
    return "\n".join(map(printable, lines))


def _constrained(holder: Descriptor) -> set[str]:
    """Attributes some record of ``holder`` constrains; none when it has no records."""
    return {a for record in holder.records for a in record.attrs}


def _rule_failure(evaluator: PairEvaluator, name: str, s: Descriptor, t: Descriptor) -> str:
    rule = evaluator.rules[name]
    return (
        f"{name}: rule {rule} ({_RULE_WORDS.get(rule, rule)}) fails: source "
        f"{format_value(evaluator.value(s, name))}, target {format_value(evaluator.value(t, name))}"
    )


def _records_explanation(
    evaluator: PairEvaluator, holder_name: str, holder: Descriptor, other: Descriptor, failing: set[str], mask: int
) -> list[str]:
    other_name = "source" if holder_name == "target" else "target"
    policy = evaluator.policy
    best: tuple[int, int, list[str]] | None = None  # (number of problems, record index, problems)
    for k, record in enumerate(holder.records):
        for alternative in record.alternatives or ((),):
            problems = [
                f"field {a} accepts {acc.describe()}, the {other_name} has {format_value(evaluator.value(other, a))}"
                for a, acc in zip(record.attrs, alternative)
                if not acc.accepts(evaluator.value(other, a))
            ]
            if not record.alternatives:
                problems = ["no combination of its variables exists"]
            outside = failing - set(record.attrs) if policy.records == "override" else failing
            problems += [_rule_failure(evaluator, a, *_pair(holder_name, holder, other)) for a in sorted(outside, key=evaluator.attributes.index)]
            if best is None or len(problems) < best[0]:
                best = (len(problems), k, problems)
    assert best is not None, "a holder of records has at least one"
    count, k, problems = best
    total = len(holder.records)
    if count == 0:
        return [f"  the {holder_name}'s COMPATIBLE record #{k} (of {total}) accepts the {other_name}"]
    lines = [f"  no COMPATIBLE record of the {holder_name} ({total}) accepts the {other_name}; record #{k} came closest:"]
    lines += [f"    {p}" for p in problems]
    return lines


def _pair(holder_name: str, holder: Descriptor, other: Descriptor) -> tuple[Descriptor, Descriptor]:
    return (other, holder) if holder_name == "target" else (holder, other)
