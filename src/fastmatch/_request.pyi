"""Type stub of native/_request.pyx: a TargetIndex's plain one-record requests."""

from typing import Any, Hashable, Iterable, Mapping

import numpy as np
import numpy.typing as npt

from ._kernel import RequestTargets
from .devices import DeviceSet

class Unseen:
    key: bytes
    hash: int
    def __init__(self, key: bytes, hash: int) -> None: ...

class Names:
    def __init__(self, names: dict[str, int]) -> None: ...

class PlainRequests:
    def __init__(
        self,
        capacity: int,
        host_codes: dict[str, int],
        target_ids: dict[str, int],
        targets: RequestTargets | None,
        largest_k: int,
        hash_bits: int = 64,
    ) -> None: ...
    def __len__(self) -> int: ...
    def top_k(self, record: object, k: object) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | Unseen | None: ...
    def problem_of(self, key: Hashable, default: Any) -> Any: ...
    def keep(self, key: Unseen | Hashable, problem: Any) -> None: ...

class IndexRequests:
    _plain: PlainRequests  # set by the subclass (None before: every request goes to _top_k)
    def top_k(
        self, sources: DeviceSet | Iterable[Mapping[str, Any]] | Mapping[str, Any], k: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]: ...
    def _top_k(
        self, sources: DeviceSet | Iterable[Mapping[str, Any]] | Mapping[str, Any], k: int, plain: Unseen | None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]: ...
