"""fastmatch: fleet-wide live-migration compatibility for VFIO mediated devices.

The names below are imported on first use (numpy and the native kernel take a
while to load), so that the command line can start, and be interrupted, cleanly.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # (``X as X``: the names are the package's, for type checkers too)
    from .devices import DeviceSet as DeviceSet
    from .engine import CheckResult as CheckResult
    from .engine import Reasons as Reasons
    from .engine import check as check
    from .engine import load as load
    from .engine import match as match
    from .drain import Plan as Plan
    from .drain import plan as plan
    from .errors import FastmatchError as FastmatchError
    from .errors import InputError as InputError
    from .errors import PolicyError as PolicyError
    from .errors import ResultTooLargeError as ResultTooLargeError
    from .errors import TemplateError as TemplateError
    from .errors import UnknownIdError as UnknownIdError
    from .index import TargetIndex as TargetIndex
    from .policy import Policy as Policy
    from .result import MatchResult as MatchResult
    from .scores import ScoreParts as ScoreParts

_WHERE = {
    "CheckResult": "engine",
    "DeviceSet": "devices",
    "FastmatchError": "errors",
    "InputError": "errors",
    "MatchResult": "result",
    "Plan": "drain",
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
    "plan": "drain",
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
