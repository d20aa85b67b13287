"""Type stub of interning's native numbering of values (native/_numbering.pyx)."""

from typing import Any, Mapping, Sequence

import numpy as np
import numpy.typing as npt

def number_columns(
    rows: Sequence[Any], names: Sequence[str], attribute: str | None = None
) -> tuple[list[list[Any]], list[list[int]], npt.NDArray[np.int64]]: ...
def number_values(values: Sequence[Any]) -> tuple[list[Any], list[int], npt.NDArray[np.int64]]: ...
def attributes_of(objects: Sequence[Any], names: Sequence[str]) -> list[list[Any]]: ...
