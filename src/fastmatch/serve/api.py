"""The JSON API's answers, computed on one fleet (on the event loop or in a worker thread: see app.py).

Scores are never the kernel's int64 here: each candidate carries its ``rank`` (1 = best, per
source) and the parts that decided its score (``fastmatch.scores``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..devices import DeviceSet
from ..engine import check
from ..errors import FastmatchError
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
    """``MatchResult.explanation``: the verdict, reasons, rank, score parts, neighbours and the text."""
    sources = sources_of([request.source], fleet, "source")
    j = fleet.targets.id_index.get(request.target)
    if j is None:
        raise RequestError(404, f"field 'target': no target with id {request.target!r} in the fleet")
    return fleet.index.match(sources).explanation(0, j)


def check_pair(fleet: Fleet, request: CheckRequest) -> dict[str, Any]:
    """The two records alone, as ``fastmatch check`` compares them (ids are optional)."""
    try:
        verdict = check(request.source, request.target, fleet.policy)
    except FastmatchError as exc:
        raise records_error(exc) from None
    return {"compatible": verdict.compatible, "reasons": list(verdict.reasons), "score": verdict.parts, "explanation": verdict.explanation}
