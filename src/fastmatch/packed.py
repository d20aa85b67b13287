"""Texts packed into one buffer, as the native writers (fastmatch._output) take them:
``(data, ends)``, text ``i`` being ``data[ends[i - 1]:ends[i]]`` (from 0 for the first),
``ends`` int64. A million ids become one ``bytes`` and one array instead of a million
``bytes`` objects. :class:`Texts` holds a column of them as a sequence of str."""

from __future__ import annotations

import operator
from functools import cached_property
from collections.abc import Iterable, Iterator, Sequence
from typing import overload

import numpy as np
import numpy.typing as npt

from ._output import ascii_texts

Packed = tuple["bytes | npt.NDArray[np.uint8]", np.ndarray]


def packed(encoded: Iterable[bytes]) -> Packed:
    """Already encoded texts, packed."""
    texts = list(encoded)
    return b"".join(texts), np.cumsum(np.fromiter(map(len, texts), np.int64, len(texts)), dtype=np.int64)


def utf8(texts: list[str]) -> Packed:
    """Texts in UTF-8: plain ASCII ones (the usual ids) copied at C speed, else each encoded."""
    plain = ascii_texts(texts, b"")
    return plain if plain is not None else packed(map(str.encode, texts))


class Texts(Sequence[str]):
    """A column of texts kept as its UTF-8 bytes and their Arrow offsets (``offsets[i]`` to
    ``offsets[i + 1]`` of ``data``, ``offsets[0] == 0``): a columnar fleet's ids, hosts and VMs,
    a million of each, without a million str. Reading one makes its str; iterating makes them
    all once (natively) and keeps them. Native code reads the bytes themselves (:attr:`packed`,
    ``offsets``, ``data``)."""

    def __init__(self, offsets: np.ndarray, data: np.ndarray) -> None:
        self.offsets = np.ascontiguousarray(offsets, dtype=np.int64)
        self.data = np.ascontiguousarray(data, dtype=np.uint8)
        if len(self.offsets) == 0 or self.offsets[0] != 0:
            raise ValueError("texts' offsets start at 0")

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return self.strings[index]
        if "strings" in self.__dict__:
            made: str = self.__dict__["strings"][index]
            return made
        n = len(self)
        i = operator.index(index)
        if not -n <= i < n:
            raise IndexError(f"text {i} of {n}")
        i %= n
        return self.data[self.offsets[i] : self.offsets[i + 1]].tobytes().decode()

    def __iter__(self) -> Iterator[str]:
        return iter(self.strings)

    def __contains__(self, text: object) -> bool:
        return text in self.strings

    def index(self, text: str, start: int = 0, stop: int | None = None) -> int:
        return self.strings.index(text, start, len(self) if stop is None else stop)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Texts):
            return np.array_equal(self.offsets, other.offsets) and np.array_equal(self.data, other.data)
        if isinstance(other, (list, tuple)):
            return len(other) == len(self) and self.strings == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal to a list, which has none

    def __repr__(self) -> str:
        return f"<Texts: {len(self):,} texts, {len(self.data):,} bytes>"

    def __getstate__(self) -> dict[str, np.ndarray]:
        return {"offsets": self.offsets, "data": self.data}  # not the str made from them

    @cached_property
    def strings(self) -> list[str]:
        """Every text as a str, made once."""
        from ._lines import arrow_strings

        made = arrow_strings(self.offsets, self.data, False)
        assert made is not None  # (only a check for repeats gives None)
        return made

    @property
    def packed(self) -> Packed:
        """``(data, ends)``: as :func:`utf8` packs texts, without a copy."""
        return self.data, self.offsets[1:]


def packed_texts(texts: Sequence[str]) -> Packed:
    """Texts in UTF-8, packed: those of a :class:`Texts` as they are, others encoded."""
    return texts.packed if isinstance(texts, Texts) else utf8(list(texts))


def arrow_offsets(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(offsets, data)`` of texts as an Arrow column holds them (offsets from 0, one more than
    texts), for the native functions that read both sides so."""
    if isinstance(texts, Texts):
        return texts.offsets, texts.data
    listed = list(texts)
    # A lone surrogate (JSON's "\ud800") has no UTF-8: its own bytes, equal to no valid text's.
    data, ends = ascii_texts(listed, b"") or packed(text.encode("utf-8", "surrogatepass") for text in listed)
    offsets = np.zeros(len(ends) + 1, dtype=np.int64)
    offsets[1:] = ends
    return offsets, np.frombuffer(data, dtype=np.uint8)
