"""A match in a few numbers: devices and classes, compatible pairs, stranded sources, reasons.

Everything comes from the bounded outputs of :class:`~fastmatch.result.MatchResult`
(``counts``, ``compatible_counts``, ``reason_counts``): a summary never holds n x m values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import printable
from .result import MatchResult

# The largest integer every JSON tool reads exactly (a double's); larger counts are written as text.
JSON_EXACT_INT = 1 << 53


@dataclass(frozen=True)
class Summary:
    sources: int
    targets: int
    source_classes: int
    target_classes: int
    compatible_pairs: int  # capacity 0 included: capacity is not part of compatibility
    available_pairs: int  # compatible, to targets with capacity
    stranded_sources: int  # sources with no available target
    reasons: dict[str, int]  # incompatible pairs each reason makes fail, most first

    @property
    def pairs(self) -> int:
        return self.sources * self.targets

    @property
    def incompatible_pairs(self) -> int:
        return self.pairs - self.compatible_pairs

    def json(self) -> dict[str, Any]:
        """The summary as JSON-safe values: a count above 2^53 is written as a string."""
        return {
            "sources": {"devices": _exact(self.sources), "classes": _exact(self.source_classes)},
            "targets": {"devices": _exact(self.targets), "classes": _exact(self.target_classes)},
            "pairs": _exact(self.pairs),
            "compatible_pairs": _exact(self.compatible_pairs),
            "available_pairs": _exact(self.available_pairs),
            "incompatible_pairs": _exact(self.incompatible_pairs),
            "stranded_sources": _exact(self.stranded_sources),
            "reasons": {name: _exact(count) for name, count in self.reasons.items()},
        }

    def text(self) -> str:
        """For people: aligned lines, reason names with their control characters escaped."""
        lines = [
            f"sources           {self.sources:,} devices, {self.source_classes:,} distinct descriptors",
            f"targets           {self.targets:,} devices, {self.target_classes:,} distinct descriptors",
            f"compatible pairs  {self.compatible_pairs:,} of {self.pairs:,}{_share(self.compatible_pairs, self.pairs)}, "
            f"{self.available_pairs:,} of them to targets with capacity",
            f"stranded sources  {self.stranded_sources:,} of {self.sources:,} (no available target)",
            f"why pairs fail    {self.incompatible_pairs:,} incompatible pairs; one pair can fail for several reasons",
        ]
        names = {name: printable(name) for name in self.reasons}
        width = max(map(len, names.values()), default=0)
        lines += [
            f"  {names[name]:<{width}}  {count:>12,}{_share(count, self.incompatible_pairs)}"
            for name, count in self.reasons.items()
        ]
        return "".join(line + "\n" for line in lines)


def summarise(result: MatchResult) -> Summary:
    """The summary of a match, from its bounded outputs."""
    n, m = result.shape
    cn, cm = result.class_shape
    available = result.counts()
    return Summary(
        sources=n,
        targets=m,
        source_classes=cn,
        target_classes=cm,
        compatible_pairs=int(result.compatible_counts().sum()),
        available_pairs=int(available.sum()),
        stranded_sources=int((available == 0).sum()),
        reasons=result.reason_counts(),
    )


def _exact(count: int) -> int | str:
    return count if count <= JSON_EXACT_INT else str(count)


def _share(part: int, whole: int) -> str:
    return f" ({100 * part / whole:.1f}%)" if whole else ""
