"""fastmatch: fleet-wide live-migration compatibility for VFIO mediated devices.

The names below are imported on first use (numpy and the native kernel take a
while to load), so that the command line can start, and be interrupted, cleanly.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .devices import DeviceSet
    from .engine import CheckResult, Reasons, check, load, match
    from .errors import FastmatchError, InputError, PolicyError, ResultTooLargeError, TemplateError, UnknownIdError
    from .index import TargetIndex
    from .policy import Policy
    from .result import MatchResult
    from .scores import ScoreParts

_WHERE = {
    "CheckResult": "engine",
    "DeviceSet": "devices",
    "FastmatchError": "errors",
    "InputError": "errors",
    "MatchResult": "result",
    "Policy": "policy",
    "PolicyError": "errors",
    "Reasons": "engine",
    "ResultTooLargeError": "errors",
    "ScoreParts": "scores",
    "TargetIndex": "index",
    "TemplateError": "errors",
    "UnknownIdError": "errors",
    "check": "engine",
    "load": "engine",
    "match": "engine",
}
__all__ = sorted(_WHERE)
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'fastmatch' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
