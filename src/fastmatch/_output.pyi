"""Type stub of the answer writers' native module (native/_output.pyx)."""

from typing import TypeVar

import numpy as np
import numpy.typing as npt

Int64s = npt.NDArray[np.int64]
Bytes = bytes | npt.NDArray[np.uint8]  # UTF-8 texts, packed (fastmatch.packed)
Cell = TypeVar("Cell", np.uint8, np.int32, np.int64, np.uint64)

def ascii_texts(texts: list[str], forbidden: bytes) -> tuple[bytes, Int64s] | None: ...

class DistinctRows:
    def __init__(self, k: int) -> None: ...
    def __len__(self) -> int: ...
    def add(self, a: Int64s, b: Int64s, c: Int64s, holders: Int64s, which: Int64s) -> None: ...
    def rows(self) -> tuple[Int64s, Int64s, Int64s, Int64s]: ...

def joined_lines(
    prefix: bytes,
    ids: Bytes,
    id_ends: Int64s,
    which: Int64s,
    pieces: Bytes,
    piece_ends: Int64s,
    ranking_pieces: Int64s,
    start: int,
    budget: int,
) -> tuple[bytes, int]: ...
def gathered_texts(data: Bytes, ends: Int64s, picks: Int64s) -> tuple[bytes, npt.NDArray[np.int32] | Int64s]: ...
def repeated_texts(data: Bytes, ends: Int64s, repeats: Int64s, first: int = 0) -> tuple[bytes, npt.NDArray[np.int32] | Int64s]: ...
def spread_rankings(table: npt.NDArray[Cell], which: Int64s, counts: Int64s) -> npt.NDArray[Cell]: ...
def copy_into(target: memoryview | bytearray, at: int, data: bytes | memoryview) -> None: ...
