"""Columnar files told by their first bytes. Only the standard library: the command reads
them before NumPy is imported (``fastmatch.allocator.touch_budget``)."""

from __future__ import annotations

PARQUET_MAGIC = b"PAR1"
ARROW_FILE_MAGIC = b"ARROW1"
ARROW_STREAM_START = b"\xff\xff\xff\xff"  # an IPC stream's first message starts with the continuation marker
FEATHER_V1_MAGIC = b"FEA1"
COLUMNAR_FORMATS = ("parquet", "arrow")
LONGEST_MAGIC = max(map(len, (PARQUET_MAGIC, ARROW_FILE_MAGIC, ARROW_STREAM_START, FEATHER_V1_MAGIC)))


def columnar_format(data: bytes) -> str | None:
    """``parquet`` or ``arrow`` when the bytes start with one of their magic numbers, else ``None``."""
    if data.startswith(PARQUET_MAGIC):
        return "parquet"
    if data.startswith((ARROW_FILE_MAGIC, ARROW_STREAM_START, FEATHER_V1_MAGIC)):
        return "arrow"
    return None
