"""Blocks taken in another source order: every source class keeps its own ranges; blocked
rows answer as the reference does whether or not they are reordered; device groups."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastmatch
from fastmatch import DeviceSet, blocks as blocking
from fastmatch.blocks import Blocks
from fastmatch.engine import match_reference
from fastmatch.result import grouped
from strategies import Scenario, scenarios


@st.composite
def blocks(draw):
    rows = draw(st.lists(st.lists(st.tuples(st.integers(0, 50), st.integers(1, 20)), max_size=3), max_size=30))
    start = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(row) for row in rows], out=start[1:])
    ranges = np.array([[first, first + width] for row in rows for first, width in sorted(row)], dtype=np.int64).reshape(-1)
    pairs = int(sum(width for row in rows for _, width in row))
    return rows, Blocks(start, ranges, pairs)


def ranges_of(blocks: Blocks, i: int) -> list[int]:
    return blocks.ranges[2 * blocks.start[i] : 2 * blocks.start[i + 1]].tolist()


@settings(max_examples=200, deadline=None)
@given(blocks())
def test_each_source_class_keeps_its_ranges_in_the_new_order(drawn):
    rows, original = drawn
    order = original.source_order()
    assert sorted(order.tolist()) == list(range(len(rows)))  # a permutation
    moved = original.in_source_order(order)
    assert moved.pairs == original.pairs and len(moved.start) == len(original.start)
    for new, old in enumerate(order):
        assert ranges_of(moved, new) == ranges_of(original, int(old))
    # Rows that read the same target ranges come together: sorted by their first range's start.
    firsts = [ranges_of(moved, i)[0] if ranges_of(moved, i) else -1 for i in range(len(rows))]
    assert firsts == sorted(firsts)


def _answers(result) -> dict[str, object]:
    m = result.shape[1]
    indices, scores = result.top_k(max(m, 1))
    return {
        "top_k": indices.tolist(),
        "top_k_scores": scores.tolist(),
        "counts": result.counts().tolist(),
        "sparse": result.to_sparse().toarray().tolist(),
        "compatible": np.asarray(result.compatible).tolist(),
        "scores": np.asarray(result.scores).tolist(),
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenario=scenarios(), reorder=st.booleans())
def test_blocked_rows_answer_alike_in_either_order(scenario: Scenario, reorder: bool) -> None:
    """Rows are reordered only where it pays (Blocks.reorder_pays); both ways every output is
    the reference's."""
    policy = scenario.policy
    sources = DeviceSet.from_records(scenario.sources, policy)
    targets = DeviceSet.from_records(scenario.targets, policy)
    want = _answers(match_reference(sources, targets, policy, scenario.confirm))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FASTMATCH_BLOCKING", "always")
        patch.setattr(blocking, "REORDER_PAIRS_PER_ROW", 0 if reorder else 1 << 40)
        got = _answers(fastmatch.match(sources, targets, policy, workers=2, confirm=scenario.confirm))
    assert got == want


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-2, 12), max_size=60), st.integers(0, 10))
def test_device_groups_hold_each_key_s_positions_in_order(keys, n_groups):
    order, start = grouped(np.array(keys, dtype=np.int64), n_groups)
    assert sorted(order.tolist()) == list(range(len(keys)))  # every position once
    assert len(start) == n_groups + 1 and start[0] == 0
    for g in range(n_groups):
        assert order[start[g] : start[g + 1]].tolist() == [p for p, key in enumerate(keys) if key == g]


@st.composite
def target_keys(draw):
    """Sources' codes on a few rules, and the targets' distinct keys with their ranges."""
    n_rules = draw(st.integers(0, 4))
    radix = np.array([draw(st.integers(3, 9)) for _ in range(n_rules)], dtype=np.int64)
    n_sources = draw(st.integers(0, 40))
    codes = np.array(
        [[draw(st.integers(0, int(r) + 2)) for _ in range(n_sources)] for r in radix], dtype=np.uint16
    ).reshape(n_rules, n_sources)
    wildcards = draw(st.lists(st.tuples(*[st.booleans()] * n_rules), min_size=1, max_size=4, unique=True))
    patterns = np.array(wildcards, dtype=np.uint8).reshape(len(wildcards), n_rules)
    span = int(np.prod(radix)) if n_rules else 1
    keys = np.array(sorted(draw(st.sets(st.integers(0, span - 1), max_size=30))), dtype=np.int64)
    widths = np.array([draw(st.integers(0, 3)) for _ in keys], dtype=np.int64)
    end = np.cumsum(widths)
    settled = np.array([draw(st.booleans()) for _ in keys], dtype=np.uint8)
    return codes, radix, patterns, keys, end - widths, end, settled


def _naive_ranges(codes, radix, patterns, keys, first, end, settled) -> list[list[tuple[int, int, int]]]:
    """Each source's ranges (first, end, settled), as the blocks module's docstring defines
    them, one source at a time."""
    position = {int(key): k for k, key in enumerate(keys)}
    rows = []
    for i in range(codes.shape[1]):
        found = []
        for pattern in patterns:
            key = 0
            for r, wild in enumerate(pattern):
                code = -1 if wild else min(int(codes[r, i]), int(radix[r]) - 2)
                key = key * int(radix[r]) + code + 1
            k = position.get(key)
            if k is not None and end[k] > first[k]:
                found.append((int(first[k]), int(end[k]), int(settled[k])))
        rows.append(sorted(found))
    return rows


@settings(max_examples=300, deadline=None)
@given(target_keys())
def test_each_source_class_visits_the_targets_of_its_keys(drawn):
    from fastmatch import _kernel

    codes, radix, patterns, keys, first, end, settled = drawn
    rows = np.arange(len(radix), dtype=np.int64)
    slots = _kernel.key_slots(keys)
    start, ranges, ranges_settled, pairs = _kernel.block_ranges(codes, rows, radix, patterns, keys, slots, first, end, settled)
    want = _naive_ranges(codes, radix, patterns, keys, first, end, settled)
    got = [
        list(zip(ranges[2 * start[i] : 2 * start[i + 1] : 2].tolist(), ranges[2 * start[i] + 1 : 2 * start[i + 1] : 2].tolist(),
                 ranges_settled[start[i] : start[i + 1]].tolist()))
        for i in range(codes.shape[1])
    ]
    assert got == want
    assert pairs == sum(b - a for row in want for a, b, _ in row)
