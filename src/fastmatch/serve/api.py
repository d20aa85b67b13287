"""The JSON API's answers, computed on one fleet (in a worker thread: the kernel releases the GIL).

Scores are never the kernel's int64 here: each candidate carries its ``rank`` (1 = best, per
source) and the parts that decided its score (``fastmatch.scores``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..devices import DeviceSet
from ..engine import _with_ids as with_ids, match
from ..errors import FastmatchError
from ..result import MatchResult
from .fleet import Fleet
from .requests import CandidatesRequest, CheckRequest, ExplainRequest, RequestError, check_count, records_error


def sources_of(records: list[dict[str, Any]], fleet: Fleet, field: str) -> DeviceSet:
    try:
        return DeviceSet.from_records(records, fleet.policy, source=field)
    except FastmatchError as exc:
        raise records_error(exc) from None


def candidates(fleet: Fleet, request: CandidatesRequest, max_sources: int, max_k: int) -> dict[str, Any]:
    check_count("sources", len(request.sources), max_sources)
    if not 0 <= request.k <= max_k:
        raise RequestError(422, f"field 'k': expected an integer from 0 to {max_k:,}, got {request.k}")
    sources = sources_of(request.sources, fleet, "sources")
    result = fleet.index.match(sources)
    indices, scores = result.top_k(request.k)
    parts = result.score_parts(np.arange(len(sources))[:, None], indices, scores)
    target_ids = fleet.targets.ids
    return {
        "results": [
            {
                "source": source_id,
                "candidates": [
                    {"target": target_ids[j], "rank": rank, "score": parts.json((i, rank - 1))}
                    for rank, j in enumerate(indices[i][indices[i] >= 0].tolist(), start=1)
                ],
            }
            for i, source_id in enumerate(sources.ids)
        ]
    }


def explain(fleet: Fleet, request: ExplainRequest) -> dict[str, Any]:
    sources = sources_of([request.source], fleet, "source")
    j = fleet.targets.id_index.get(request.target)
    if j is None:
        raise RequestError(404, f"field 'target': no target with id {request.target!r} in the fleet")
    result = fleet.index.match(sources)
    return _verdict(result, 0, j)


def check_pair(fleet: Fleet, request: CheckRequest) -> dict[str, Any]:
    """The two records alone, as ``fastmatch check`` compares them (ids are optional)."""
    source, target = with_ids(request.source, request.target)
    try:
        result = match([source], [target], fleet.policy, workers=1)
    except FastmatchError as exc:
        raise records_error(exc) from None
    return _verdict(result, 0, 0)


def _verdict(result: MatchResult, i: int, j: int) -> dict[str, Any]:
    """One pair: its reasons, or its rank among the source's available candidates and its score's parts."""
    names = result.reason_names(i, j)
    rank = score = None
    if not names:
        pair_score = result.scores[i : i + 1, j]
        score = result.score_parts(np.array([i]), np.array([j]), pair_score).json(0)
        indices, _ = result.top_k(len(result.targets))
        found = np.flatnonzero(indices[i] == j)
        rank = int(found[0]) + 1 if len(found) else None  # None: capacity 0, no candidate
    return {
        "source": result.sources.ids[i],
        "target": result.targets.ids[j],
        "compatible": not names,
        "reasons": names,
        "rank": rank,
        "score": score,
        "explanation": result.explain(i, j),
    }
