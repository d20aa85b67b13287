"""Scores as people and JSON tools read them (docs/model.md section 7): the parts that decided a
score, shown beside its rank.

The kernel's score is one int64 whose bits rank a pair (reasons.py has the layout). Its
number is exact but unreadable, and past 2^53 a JSON reader (jq, JavaScript) rounds it, so
that two candidates of different scores compare equal there. Nothing shown to a person or
written to JSON/CSV carries it: outputs carry the candidate's rank among its source's
candidates and these parts, which decide the order lexicographically:

``exact``           the two descriptors are identical (every attribute not ignored)
``same_type``       equal ``score_type`` values
``version``         the target's ``score_version``, spelled canonically (``Version.canonical``:
                    a class of equal versions shows one spelling); ``None`` when either side lacks one
``major_distance``  ``|T.major - S.major|`` (prefer = "closest" only; smaller ranks higher)
``minor_distance``  ``|T.minor - S.minor|`` (prefer = "closest" only; smaller ranks higher)

then, with prefer = "closest", the higher target patch; with prefer = "newest", the newer
target version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .reasons import SCORE_EXACT, SCORE_HAS_VERSION, SCORE_SAME_TYPE
from .values import Version

if TYPE_CHECKING:
    from .devices import DeviceSet

# The largest integer every JSON reader holds exactly (IEEE 754 doubles); larger distances
# are written as strings of digits.
JSON_SAFE_INTEGER = 2**53


def _json_integer(value: int) -> int | str:
    return value if value <= JSON_SAFE_INTEGER else str(value)


class ClassVersions:
    """The ``score_version`` of each descriptor class of one side, as arrays: read once from one
    device of each class, since every device of a class has the same descriptor."""

    def __init__(self, devices: "DeviceSet", device_class: np.ndarray, attribute: str | None) -> None:
        n_classes = int(device_class.max()) + 1 if len(device_class) else 0
        first_device = np.full(n_classes, -1, dtype=np.int64)
        first_device[device_class[::-1]] = np.arange(len(device_class) - 1, -1, -1)
        versions: list[Version | None] = [
            devices.descriptor(int(i)).values.get(attribute) if attribute else None for i in first_device
        ]
        self.present = np.array([v is not None for v in versions], dtype=bool)
        self.major = np.array([v.major if v else 0 for v in versions], dtype=np.int64)
        self.minor = np.array([v.minor if v else 0 for v in versions], dtype=np.int64)
        self.version = np.array(versions + [None], dtype=object)[:-1]  # (the None keeps it 1-d)


def _distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``|a - b|`` of non-negative int64s, exact: in uint64 the larger minus the smaller fits."""
    high, low = np.maximum(a, b).astype(np.uint64), np.minimum(a, b).astype(np.uint64)
    distance: npt.NDArray[np.uint64] = high - low
    return distance


@dataclass(frozen=True)
class ScoreParts:
    """The parts of some scores, one entry per (source, target, score) given to
    :meth:`fastmatch.MatchResult.score_parts`. Entries of incompatible pairs (score -1) are
    all false, ``None`` or 0; :attr:`compatible` tells them apart."""

    compatible: np.ndarray  # bool
    exact: np.ndarray  # bool
    same_type: np.ndarray  # bool
    version: np.ndarray  # object: the target's Version, or None where either side has no score_version
    major_distance: np.ndarray  # uint64; 0 unless prefer = "closest" and both have a version
    minor_distance: np.ndarray  # uint64
    prefer: str  # the policy's: "closest" or "newest"

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of every array: that of the arguments, broadcast together."""
        return self.exact.shape

    def __repr__(self) -> str:
        return f"<ScoreParts {self.shape}, prefer={self.prefer!r}>"

    def json(self, n: Any) -> dict[str, Any] | None:
        """Entry ``n`` as a JSON-safe dict (no integer above 2^53), or None when incompatible."""
        if not self.compatible[n]:
            return None
        closest = self.prefer == "closest" and self.version[n] is not None
        return {
            "exact": bool(self.exact[n]),
            "same_type": bool(self.same_type[n]),
            "version": self.version[n].canonical if self.version[n] is not None else None,
            "major_distance": _json_integer(int(self.major_distance[n])) if closest else None,
            "minor_distance": _json_integer(int(self.minor_distance[n])) if closest else None,
        }

    def json_list(self) -> list[dict[str, Any] | None]:
        """Every entry's :meth:`json`, in the arrays' order (flattened): the arrays read once
        as Python values, each version spelled once (writing a ranking reads them all)."""
        closest = self.prefer == "closest"
        spelled: dict[int, str] = {}  # id of a Version -> its canonical text
        listed: list[dict[str, Any] | None] = []
        for compatible, exact, same_type, version, major, minor in zip(
            *(part.reshape(-1).tolist() for part in (self.compatible, self.exact, self.same_type, self.version)),
            self.major_distance.reshape(-1).tolist(),
            self.minor_distance.reshape(-1).tolist(),
        ):
            if not compatible:
                listed.append(None)
                continue
            if version is not None and id(version) not in spelled:  # (the versions live as long as the array)
                spelled[id(version)] = version.canonical
            text = None if version is None else spelled[id(version)]
            measured = closest and version is not None
            listed.append({
                "exact": exact,
                "same_type": same_type,
                "version": text,
                "major_distance": _json_integer(major) if measured else None,
                "minor_distance": _json_integer(minor) if measured else None,
            })
        return listed

    def words(self, n: Any) -> str:
        """Entry ``n`` for a person, e.g. ``same type, version 2.1.7 (same major, 1 minor away)``."""
        if not self.compatible[n]:
            return "incompatible"
        said = ["identical descriptors" if self.exact[n] else "same type" if self.same_type[n] else "other type"]
        version = self.version[n]
        if version is None:
            said.append("no version to compare")
        elif self.prefer == "closest":
            said.append(f"version {version.canonical} ({_away(int(self.major_distance[n]), int(self.minor_distance[n]))})")
        else:
            said.append(f"version {version.canonical}")
        return ", ".join(said)

    def why_above(self, a: Any, b: Any) -> str:
        """In words, the part that puts entry ``a`` above entry ``b`` (both of one source)."""
        va, vb = self.version[a], self.version[b]
        if self.exact[a] != self.exact[b]:
            return "its descriptor is identical to the source's" if self.exact[a] else "the other's descriptor is identical"
        if self.same_type[a] != self.same_type[b]:
            return "it has the source's type" if self.same_type[a] else "the other has the source's type"
        if (va is None) != (vb is None):
            return "it and the source have a version" if vb is None else "the other and the source have a version"
        if va is not None and self.prefer == "closest":
            for part, mine, other in (
                ("major", self.major_distance[a], self.major_distance[b]),
                ("minor", self.minor_distance[a], self.minor_distance[b]),
            ):
                if mine != other:
                    return f"its {part} version is {'closer' if mine < other else 'farther'} ({mine:,} against {other:,} away)"
            if va.patch != vb.patch:
                return f"its patch is {'higher' if va.patch > vb.patch else 'lower'} ({va.canonical} against {vb.canonical})"
        elif va is not None and va != vb:
            return f"its version is {'newer' if va > vb else 'older'} ({va.canonical} against {vb.canonical})"
        return "equal score: the targets' input order decides"


def _away(majors: int, minors: int) -> str:
    if majors:
        return f"{majors:,} major{'s' if majors != 1 else ''} away"
    if minors:
        return f"same major, {minors:,} minor{'s' if minors != 1 else ''} away"
    return "same major and minor"


def _where_has_version(
    has_version: npt.NDArray[np.bool_], versions: npt.NDArray[np.object_], classes: npt.NDArray[np.int64]
) -> npt.NDArray[np.object_]:
    """The target classes' versions where the pair has one, None elsewhere."""
    if not len(versions):
        return np.full(has_version.shape, None, dtype=object)
    # A copy, ours to change; flat, so that one pair (0-d classes) also gives an array.
    chosen: npt.NDArray[np.object_] = versions[classes.reshape(-1)].reshape(classes.shape)
    chosen[~has_version] = None
    return chosen


def score_parts(
    sources: ClassVersions,
    targets: ClassVersions,
    prefer: str,
    source_classes: np.ndarray,
    target_classes: np.ndarray,
    scores: np.ndarray,
) -> ScoreParts:
    """The parts of ``scores`` of the pairs (``source_classes[n]``, ``target_classes[n]``)."""
    scores = np.asarray(scores, dtype=np.int64)
    compatible = scores >= 0
    bits = np.where(compatible, scores, 0)
    has_version = compatible & (bits & SCORE_HAS_VERSION != 0)
    # Where a pair is incompatible its classes may be anything: those parts are masked.
    sc, tc = source_classes, target_classes
    closest = has_version & (prefer == "closest")
    zero = np.zeros(scores.shape, dtype=np.uint64)
    measured = bool(closest.any())  # else no class need exist to be read (an empty side)
    return ScoreParts(
        compatible=compatible,
        exact=bits & SCORE_EXACT != 0,
        same_type=bits & SCORE_SAME_TYPE != 0,
        version=_where_has_version(has_version, targets.version, tc),
        major_distance=np.where(closest, _distance(sources.major[sc], targets.major[tc]), zero) if measured else zero,
        minor_distance=np.where(closest, _distance(sources.minor[sc], targets.minor[tc]), zero) if measured else zero,
        prefer=prefer,
    )
