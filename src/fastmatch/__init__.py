"""fastmatch: fleet-wide live-migration compatibility for VFIO mediated devices."""

from .devices import DeviceSet
from .engine import CheckResult, Reasons, check, load, match
from .errors import FastmatchError, InputError, PolicyError, ResultTooLargeError, TemplateError
from .index import TargetIndex
from .policy import Policy
from .result import MatchResult

__all__ = [
    "CheckResult",
    "DeviceSet",
    "FastmatchError",
    "InputError",
    "MatchResult",
    "Policy",
    "PolicyError",
    "Reasons",
    "ResultTooLargeError",
    "TargetIndex",
    "TemplateError",
    "check",
    "load",
    "match",
]
__version__ = "0.1.0"
