"""The small files a drain plan reads besides the fleets: the drained hosts (``--drain-file``),
per-host limits (``--host-limits``) and what-if patches (``--assume``). Each is read whole,
checked field by field, and refused with an error that names the file and the field."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any, Mapping

from ..errors import InputError
from ..files import input_name, read_input

# These files list hosts and patches: a few thousand lines at most.
MAX_DOCUMENT_BYTES = 64 << 20


def read_text(path: str | os.PathLike[str]) -> tuple[str, str]:
    """``(name, text)`` of a small UTF-8 input."""
    name = input_name(path)
    data = read_input(path, limit=MAX_DOCUMENT_BYTES, line_limit=False)
    try:
        return name, data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(f"not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})", file=name, line=line) from None


def read_document(path: str | os.PathLike[str]) -> tuple[str, Any]:
    """``(name, document)`` of a TOML or JSON file: JSON when it is named ``*.json``, or is
    not named ``*.toml`` and starts with ``{`` (no TOML document does); TOML otherwise."""
    name, text = read_text(path)
    suffix = Path(name).suffix.lower()
    if suffix == ".json" or (suffix != ".toml" and text.lstrip()[:1] == "{"):
        try:
            return name, json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON: {exc.msg}", file=name, line=exc.lineno) from None
        except RecursionError:
            raise InputError("invalid JSON: nested too deeply", file=name) from None
    try:
        return name, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"invalid TOML: {exc}", file=name) from None
    except RecursionError:
        raise InputError("invalid TOML: nested too deeply", file=name) from None


def read_drain_file(path: str | os.PathLike[str]) -> tuple[str, list[tuple[str, int]]]:
    """``(name, [(host, line), ...])``: one host a line; blank lines and ``#`` comments skipped."""
    name, text = read_text(path)
    hosts = []
    for number, line in enumerate(text.splitlines(), start=1):
        host = line.split("#", 1)[0].strip()
        if host:
            hosts.append((host, number))
    return name, hosts


def read_host_limits(path: str | os.PathLike[str]) -> tuple[str, dict[str, int]]:
    """``(name, {host: limit})`` from TOML (``"host-01" = 4``) or JSON (``{"host-01": 4}``);
    a TOML or JSON table ``hosts`` holding them is read as well."""
    name, document = read_document(path)
    return name, check_host_limits(document, name)


def check_host_limits(document: Any, name: str | None = None) -> dict[str, int]:
    if isinstance(document, Mapping) and set(document) == {"hosts"} and isinstance(document["hosts"], Mapping):
        document = document["hosts"]
    if not isinstance(document, Mapping):
        raise InputError(f"expected a table of host = limit, got {type(document).__name__}", file=name)
    limits = {}
    for host, limit in document.items():
        if not isinstance(host, str) or not host:
            raise InputError(f"a host name is a non-empty string, got {host!r}", file=name, field=str(host))
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise InputError(f"expected an integer >= 0 (new devices on the host), got {limit!r}", file=name, field=host)
        limits[host] = limit
    return limits
