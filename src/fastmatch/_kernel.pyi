"""Type stub of the native kernel (native/_kernel.pyx)."""

import numpy as np
import numpy.typing as npt

class Problem:
    def __init__(self, interned: object, source_cany: npt.NDArray[np.uint64], target_cany: npt.NDArray[np.uint64]) -> None: ...
    def match_target_records(self, workers: int) -> npt.NDArray[np.uint8]: ...
    def match_source_records(self, workers: int) -> npt.NDArray[np.uint8]: ...
    def evaluate(
        self,
        i0: int,
        i1: int,
        target_record_matches: npt.NDArray[np.uint8],
        source_record_matches: npt.NDArray[np.uint8],
        scores: npt.NDArray[np.int64],
        reasons: npt.NDArray[np.uint64],
        workers: int,
    ) -> None: ...
