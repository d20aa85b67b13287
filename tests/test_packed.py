"""``fastmatch.packed.Texts``: a columnar fleet's ids kept as UTF-8 bytes, read as a list of str."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastmatch.packed import Texts, arrow_offsets, packed_texts, utf8

texts_lists = st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=8), max_size=12)


def _texts(listed: list[str]) -> Texts:
    return Texts(*arrow_offsets(listed))


@given(texts_lists, st.integers(-15, 15))
@settings(max_examples=200, deadline=None)
def test_texts_read_as_the_list_they_hold(listed, index):
    texts = _texts(listed)
    assert len(texts) == len(listed) and list(texts) == listed and texts == listed and texts == tuple(listed)
    if -len(listed) <= index < len(listed):
        assert _texts(listed)[index] == listed[index]  # one str, before any other is made
        assert texts[index] == listed[index]  # from the str made by iterating
    else:
        with pytest.raises(IndexError):
            _texts(listed)[index]
    assert texts[1:-1] == listed[1:-1]
    for text in listed[:3]:
        assert text in texts and texts.index(text) == listed.index(text)
    assert "\0not there" not in texts
    data, ends = packed_texts(texts)
    encoded, encoded_ends = utf8(listed)
    assert bytes(data) == bytes(encoded) and ends.tolist() == encoded_ends.tolist()


def test_texts_compare_pickle_and_refuse_offsets_not_from_zero():
    texts = _texts(["a", "é", ""])
    assert texts != ["a", "é"] and texts != ["a", "é", "x"] and texts != "aé"
    assert texts == _texts(["a", "é", ""]) and texts != _texts(["a", "e", ""])
    list(texts)  # the str made: not part of what pickles
    state = texts.__getstate__()
    assert set(state) == {"offsets", "data"}
    copy = pickle.loads(pickle.dumps(texts))
    assert copy == texts and list(copy) == ["a", "é", ""]
    assert repr(texts) == "<Texts: 3 texts, 3 bytes>"
    with pytest.raises(ValueError, match="start at 0"):
        Texts(np.array([1, 2]), np.zeros(2, dtype=np.uint8))
    with pytest.raises(TypeError):
        hash(texts)
