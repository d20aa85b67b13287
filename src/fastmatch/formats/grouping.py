"""Grouping the rows of a columnar fleet by their descriptors, column by column, at C speed
(each descriptor column coded, then the distinct rows of codes numbered in order of their
first row)."""

from __future__ import annotations

import numpy as np


def group_rows(codes: list[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's group among the distinct rows of ``codes`` (code columns of ``n`` rows, each
    from 0), numbered in order of their first row, and each group's first row.

    The columns are combined into one mixed-radix key, renumbered densely whenever the next
    column would take it past a table of about 4n entries: a table over the keys finds the
    groups without sorting the rows (a sort remains for a column of very many codes)."""
    table_limit = 4 * n + 1024
    key = np.zeros(n, dtype=np.int64)
    width = 1
    for column in codes:
        cardinality = int(column.max(initial=0)) + 1
        if width > 1 and width * cardinality > table_limit:
            key, first = _by_first_row(key, width, n)
            width = len(first)
        key = key * cardinality + column
        width *= cardinality
    return _by_first_row(key, width, n)


def _by_first_row(key: np.ndarray, width: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Keys in ``[0, width)`` numbered by their first row, and those first rows."""
    if width <= 4 * n + 1024:
        first_of_key = np.full(width, n, dtype=np.int64)
        first_of_key[key[::-1]] = np.arange(n - 1, -1, -1)  # the last write wins: each key's first row
        keys_seen = np.flatnonzero(first_of_key < n)
        first = first_of_key[keys_seen]
        order = np.argsort(first, kind="stable")
        group_of_key = np.empty(width, dtype=np.int64)
        group_of_key[keys_seen[order]] = np.arange(len(order))
        return group_of_key[key], first[order]
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[inverse.reshape(-1)], first[order]
