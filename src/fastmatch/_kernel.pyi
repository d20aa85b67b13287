"""Type stub of the native kernel (native/_kernel.pyx)."""

import numpy as np
import numpy.typing as npt

class Problem:
    def __init__(self, interned: object) -> None: ...
    @property
    def shape(self) -> tuple[int, int]: ...
    def prepare(self, workers: int) -> None: ...
    def evaluate(
        self,
        i0: int,
        i1: int,
        scores: npt.NDArray[np.int64],
        reasons: npt.NDArray[np.uint64],
        workers: int,
    ) -> None: ...
