"""Blocks taken in another source order: every source class keeps its own ranges."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fastmatch.blocks import Blocks


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
