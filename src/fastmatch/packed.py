"""Texts packed into one buffer, as the native writers (fastmatch._output) take them:
``(data, ends)``, text ``i`` being ``data[ends[i - 1]:ends[i]]`` (from 0 for the first),
``ends`` int64. A million ids become one ``bytes`` and one array instead of a million
``bytes`` objects."""

from __future__ import annotations

from typing import Iterable

import numpy as np

from ._output import ascii_texts

Packed = tuple[bytes, np.ndarray]


def packed(encoded: Iterable[bytes]) -> Packed:
    """Already encoded texts, packed."""
    texts = list(encoded)
    return b"".join(texts), np.cumsum(np.fromiter(map(len, texts), np.int64, len(texts)), dtype=np.int64)


def utf8(texts: list[str]) -> Packed:
    """Texts in UTF-8: plain ASCII ones (the usual ids) copied at C speed, else each encoded."""
    plain = ascii_texts(texts, b"")
    return plain if plain is not None else packed(map(str.encode, texts))
