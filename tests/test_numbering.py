"""Interning's native numbering (fastmatch._numbering) against plain-Python twins: columns of
mappings (dicts and other mappings, read directly or through an attribute), sequences of
values, attributes read in one pass, and mapping keys in order of first appearance; values
that are equal but not identical (1 and 1.0, equal strings made apart) share a number, as
in a dict; an unhashable value raises as a dict would."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastmatch._numbering import attributes_of, keys_in_order, number_columns, number_values


class ReadOnly(Mapping):
    """A mapping that is not a dict: read through ``.get`` and iteration."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


@dataclass(frozen=True, slots=True)
class Holder:
    values: Mapping[str, Any]
    tag: Any


@dataclass(frozen=True, slots=True)
class OtherHolder:
    """The same attributes in other slots: items of several types are read alike."""

    first: Any
    tag: Any
    values: Mapping[str, Any]


def holders(rows: list[Mapping[str, Any]]) -> list[Any]:
    return [OtherHolder(None, k, row) if k % 5 == 4 else Holder(row, k) for k, row in enumerate(rows)]


NAMES = ["a", "b", "c", "d"]
VALUES = st.one_of(
    st.none(),
    st.sampled_from(["x", "y", "", "long " * 8]).map(lambda s: "".join(list(s))),  # equal str, separate objects
    st.integers(-3, 3),
    st.frozensets(st.sampled_from("pq"), max_size=2),
    st.just(1.0),  # equal to 1: one number, the first seen kept
)
ROWS = st.lists(st.dictionaries(st.sampled_from(NAMES), VALUES, max_size=4), max_size=60)  # past the prefetch distance


def numbered(values: list[Any]) -> tuple[list[Any], list[int], list[int]]:
    index: dict[Any, int] = {}
    first: list[int] = []
    numbers = []
    for at, value in enumerate(values):
        if value not in index:
            index[value] = len(index)
            first.append(at)
        numbers.append(index[value])
    return list(index), first, numbers


def check_columns(got: tuple[list[list[Any]], list[list[int]], np.ndarray], rows: list[Mapping[str, Any]], names: list[str]) -> None:
    distinct, first, numbers = got
    assert numbers.dtype == np.int64 and numbers.shape == (len(names), len(rows))
    for k, name in enumerate(names):
        want_distinct, want_first, want_numbers = numbered([row.get(name) for row in rows])
        assert [(type(v), v) for v in distinct[k]] == [(type(v), v) for v in want_distinct]
        assert first[k] == want_first
        assert numbers[k].tolist() == want_numbers


@given(ROWS, st.lists(st.sampled_from([*NAMES, "absent"]), max_size=5))
@settings(max_examples=80, deadline=None)
def test_number_columns_numbers_as_a_dict_does(rows, names) -> None:
    check_columns(number_columns(rows, names), rows, names)
    mixed = [ReadOnly(row) if k % 2 else row for k, row in enumerate(rows)]
    check_columns(number_columns(mixed, names), mixed, names)
    check_columns(number_columns(holders(mixed), names, "values"), mixed, names)


@given(st.lists(VALUES, max_size=40))
@settings(max_examples=80, deadline=None)
def test_number_values_numbers_as_a_dict_does(values) -> None:
    distinct, first, numbers = number_values(values)
    want_distinct, want_first, want_numbers = numbered(values)
    assert [(type(v), v) for v in distinct] == [(type(v), v) for v in want_distinct]
    assert (first, numbers.tolist()) == (want_first, want_numbers)
    assert numbers.dtype == np.int64


@given(ROWS)
@settings(max_examples=60, deadline=None)
def test_attributes_and_keys_are_read_as_python_reads_them(rows) -> None:
    items = holders([ReadOnly(row) if k % 3 == 2 else row for k, row in enumerate(rows)])
    values, tags = attributes_of(items, ("values", "tag"))
    assert all(a is h.values for a, h in zip(values, items)) and tags == list(range(len(rows)))
    want: dict[str, tuple[int, int]] = {}
    for k, h in enumerate(items):
        for place, key in enumerate(h.values):
            want.setdefault(key, (k, place))
    keys, first_rows, places = keys_in_order(items, "values")
    assert keys == list(want) and list(zip(first_rows, places)) == list(want.values())


def test_empty_input_and_errors() -> None:
    distinct, first, numbers = number_columns([], ["a", "b"])
    assert distinct == [[], []] and first == [[], []] and numbers.shape == (2, 0)
    assert number_values([])[2].shape == (0,)
    assert keys_in_order([], "values") == ([], [], [])
    with pytest.raises(TypeError, match="unhashable"):
        number_columns([{"a": ["a list"]}], ["a"])
    with pytest.raises(TypeError, match="unhashable"):
        number_values([{}])
    with pytest.raises(AttributeError):
        attributes_of([object()], ["values"])
