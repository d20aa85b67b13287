"""Which implementation answers: decided here, once, for ``match`` and ``TargetIndex`` alike.

The plain-Python reference answers when ``FASTMATCH_IMPLEMENTATION=python`` asks for it (and
a request against prepared targets whose own records count is a whole ``match``); otherwise the
native kernel does, whatever the number of attributes, values or migration_version strings,
through its AVX-512 tile pass where the CPU and the problem allow it
(``FASTMATCH_NO_AVX512=1`` keeps the portable loops) and with blocks where they pay
(``fastmatch.blocks``). The kernel is told the plan; it does not choose.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from .devices import DeviceSet
from .errors import FastmatchError
from .codes import OP_CONFIRM
from .intern import Interned, PreparedTargets, intern
from .policy import Policy

IMPLEMENTATIONS = ("native", "python")


def implementation() -> str:
    """``FASTMATCH_IMPLEMENTATION``: ``native`` (default) or ``python`` (the reference)."""
    chosen = os.environ.get("FASTMATCH_IMPLEMENTATION", "native").strip().lower() or "native"
    if chosen not in IMPLEMENTATIONS:
        raise FastmatchError(f"FASTMATCH_IMPLEMENTATION={chosen!r}: expected native or python")
    return chosen


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def vector_path(interned: Interned) -> str:
    """``avx512`` when the tile pass of tile512.h takes this problem on this CPU, else ``portable``:
    the pass works on 16-bit lanes whose failure bits are reason bits, without a caller's confirmer."""
    from .native import _kernel  # loaded there, after the OpenMP settings it needs

    fits = (
        interned.lane.__name__ == "uint16"
        and interned.identity_bits
        and not (interned.op_kind == OP_CONFIRM).any()
    )
    return "avx512" if fits and _kernel.avx512_available() and not _flag("FASTMATCH_NO_AVX512") else "portable"


@dataclass(frozen=True)
class Plan:
    """The native kernel's problem and how to run it, or why the reference answers instead."""

    interned: Interned | None
    vector: str = ""
    refused: str = ""  # the reason the reference answers; "" when the kernel does

    @property
    def native(self) -> bool:
        """Whether the kernel answers (else the reference, for ``refused``)."""
        return self.interned is not None


def plan(
    sources: DeviceSet, targets: DeviceSet, policy: Policy, confirm: Callable[[str, str], bool] | None = None
) -> Plan:
    """How one match runs."""
    if implementation() == "python":
        return Plan(None, refused="FASTMATCH_IMPLEMENTATION=python")
    interned = intern(sources, targets, policy, confirm)
    return Plan(interned, vector_path(interned))


def plan_prepared(sources: DeviceSet, prepared: PreparedTargets) -> Plan:
    """How one request against prepared targets runs; without a native plan, the request is a
    whole ``match`` (whose own plan then says how)."""
    if implementation() == "python":
        return Plan(None, refused="FASTMATCH_IMPLEMENTATION=python")
    if not prepared.supports(sources):
        return Plan(None, refused="the sources' own COMPATIBLE records count, and the targets were prepared without them")
    interned = prepared.with_sources(sources)
    return Plan(interned, vector_path(interned))


def prepare(targets: DeviceSet, policy: Policy) -> PreparedTargets:
    """Targets interned once for many requests."""
    return PreparedTargets(targets, policy)
