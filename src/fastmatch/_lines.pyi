"""Type stub of the native fleet line reader (native/_lines.pyx)."""

from typing import Any, Callable, Iterable

import numpy as np
import numpy.typing as npt

def read_file(fd: int, start: int, size: int, max_line: int, progress: Callable[[int], object]) -> tuple[bytes, int]: ...
def count_lines(data: bytes) -> int: ...
def code_strings(strings: Iterable[str], tag_bits: int = 32) -> tuple[list[str], npt.NDArray[np.int64]]: ...
def positions_in(strings: Iterable[str], among: Iterable[str], tag_bits: int = 32) -> npt.NDArray[np.int64]: ...
def group_rows(
    codes: Iterable[npt.NDArray[np.int64]], n: int, tag_bits: int = 32
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]: ...
def arrow_strings(offsets: npt.NDArray[np.int64], data: npt.NDArray[np.uint8], unique: bool) -> list[str] | None: ...

class LineCoder:
    def __init__(self, data: bytes, n: int, empty: str, decode_line: Callable[[bytes], Any], tag_bits: int = 32) -> None: ...
    def add(self, start: int, stop: int) -> int: ...
    def columns(
        self,
    ) -> (
        tuple[
            list[str],
            list[str],
            list[str],
            npt.NDArray[np.int64],
            npt.NDArray[np.int64],
            list[tuple[bytes, bytes, bytes | None, bool]],
        ]
        | None
    ): ...
