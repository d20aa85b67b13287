"""Type stub of native/_request.pyx: a TargetIndex's plain one-record requests."""

from typing import Any, Hashable

import numpy as np
import numpy.typing as npt

from ._kernel import RequestTargets

class Unseen:
    key: tuple[Any, ...]
    def __init__(self, key: tuple[Any, ...]) -> None: ...

class PlainRequests:
    def __init__(
        self,
        problems: dict[Hashable, Any],
        host_codes: dict[str, int],
        target_ids: dict[str, int],
        targets: RequestTargets,
        largest_k: int,
    ) -> None: ...
    def top_k(self, record: object, k: object) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | Unseen | None: ...
