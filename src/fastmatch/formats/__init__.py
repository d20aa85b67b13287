"""Readers: each turns the bytes of one input format into device records.

A reader returns ``(records, lines)``: plain dicts in the fleet record shape
of SPEC section 2, and the line each one starts on (or ``None``), so that
validation errors can name the place.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from .json import read_json

FORMATS = {"json": read_json}


def read_path(path: str | Path, input_format: str | None = None):
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", file=str(path)) from None
    if input_format is not None and input_format not in FORMATS:
        raise InputError(f"unknown input format {input_format!r} (expected {', '.join(FORMATS)})", file=str(path))
    reader = FORMATS[input_format or "json"]
    return reader(data, path)
