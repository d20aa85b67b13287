"""Type stub of the native kernel (native/_kernel.pyx, native/reductions.pxi)."""

from typing import Any, Literal

import numpy as np
import numpy.typing as npt

Int64s = npt.NDArray[np.int64]

def aligned_empty(shape: int | tuple[int, ...], dtype: npt.DTypeLike) -> npt.NDArray[Any]: ...
def avx512_available() -> bool: ...
def group_positions(keys: Int64s, n_groups: int) -> tuple[Int64s, Int64s]: ...
def key_slots(keys: Int64s) -> Int64s: ...
def block_ranges(
    codes: npt.NDArray[Any],
    rows: Int64s,
    radix: Int64s,
    patterns: npt.NDArray[np.uint8],
    keys: Int64s,
    slots: Int64s,
    first: Int64s,
    end: Int64s,
    settled: npt.NDArray[np.uint8],
) -> tuple[Int64s, Int64s, npt.NDArray[np.uint8], int]: ...

class DeviceView:
    @staticmethod
    def for_targets(
        target_class: Int64s,
        target_host: Int64s,
        available_order: Int64s,
        available_start: Int64s,
        class_order: Int64s,
        class_start: Int64s,
        host_order: Int64s,
        host_start: Int64s,
        exclude_same_host: bool,
    ) -> DeviceView: ...
    def with_sources(
        self, source_order: Int64s, source_start: Int64s, source_host: Int64s, source_twin: Int64s
    ) -> DeviceView: ...

class Problem:
    def __init__(self, interned: object, vector: str = "portable", keep_sources: bool = False) -> None: ...
    @property
    def shape(self) -> tuple[int, int]: ...
    @property
    def tile512(self) -> bool: ...
    def block(
        self, block_start: Int64s, block_ranges: Int64s, block_settled: npt.NDArray[np.uint8] | None = None
    ) -> None: ...
    def prepare(self, workers: int) -> None: ...
    def evaluate(self, i0: int, i1: int, outcomes: Int64s, workers: int) -> None: ...
    def top_k(
        self,
        i0: int,
        i1: int,
        devices: DeviceView,
        k: int,
        depth: Int64s,
        indices: Int64s,
        scores: Int64s,
        workers: int,
        in_runs: bool = False,
    ) -> None: ...
    def counts(
        self,
        i0: int,
        i1: int,
        devices: DeviceView,
        counted: npt.NDArray[np.uint8],
        counted_per_class: Int64s,
        out: Int64s,
        workers: int,
    ) -> None: ...
    def sparse(
        self, i0: int, i1: int, devices: DeviceView, indptr: Int64s, columns: Int64s, data: Int64s, workers: int
    ) -> None: ...
    def dense(
        self,
        i0: int,
        i1: int,
        devices: DeviceView,
        what: Literal["compatible", "scores", "reasons"],
        out: npt.NDArray[Any],
        workers: int,
    ) -> None: ...

class RequestTargets:
    def __init__(self, targets: DeviceView, available_on_host: Int64s, available: npt.NDArray[np.bool_]) -> None: ...
    def top_k(self, problem: Problem | None, host: int, twin: int, k: int) -> tuple[Int64s, Int64s]: ...
