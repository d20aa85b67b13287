"""``group_rows`` on a fleet's shape: 1,000,000 rows of 7 code columns falling in 2,000
distinct rows, as int64 columns and as int32 ones (Arrow's dictionary indices), three times
each; the wall time of each call.

    PYTHONPATH=src python benches/scripts/group_rows.py
"""

import time

import numpy as np

from fastmatch._lines import group_rows

ROWS, DISTINCT = 1_000_000, 2_000
CARDINALITIES = (700, 300, 50, 4, 3, 2, 2)  # a fleet's self fields: mdev types, versions, ...


def main() -> None:
    rng = np.random.default_rng(0)
    distinct = np.stack([rng.integers(0, c, DISTINCT) for c in CARDINALITIES])
    rows = rng.integers(0, DISTINCT, ROWS)
    wide = [np.ascontiguousarray(column[rows]) for column in distinct]
    narrow = [column.astype(np.int32) for column in wide]
    for _ in range(3):
        for name, columns in (("int64", wide), ("int32", narrow)):
            start = time.perf_counter()
            _, first = group_rows(columns, ROWS)
            print(f"{name} {time.perf_counter() - start:.3f} s, {len(first)} groups")


if __name__ == "__main__":
    main()
