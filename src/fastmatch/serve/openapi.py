"""The OpenAPI description served at ``/openapi.json``: request schemas from the same msgspec
types that decode the requests, so the two cannot drift apart."""

from __future__ import annotations

from typing import Any

import msgspec

from .. import __version__
from .requests import CandidatesRequest, CheckRequest, ExplainRequest

_RECORD = {"type": "object", "description": "a device record (fields id, host, vm, self, compatible, capacity, migration_version, migratable)"}
_SCORE = {
    "type": "object",
    "description": "the parts that decided the score; integers above 2^53 are strings of digits",
    "properties": {
        "exact": {"type": "boolean"},
        "same_type": {"type": "boolean"},
        "version": {"type": ["string", "null"]},
        "major_distance": {"type": ["integer", "string", "null"]},
        "minor_distance": {"type": ["integer", "string", "null"]},
    },
}
_EXPLANATION = {
    "type": "object",
    "properties": {
        "source": {"type": "string"},
        "target": {"type": "string"},
        "compatible": {"type": "boolean"},
        "reasons": {"type": "array", "items": {"type": "string"}, "description": "why the pair fails; empty when compatible"},
        "rank": {"type": ["integer", "null"], "description": "1 = best among the source's available candidates"},
        "score": {"oneOf": [{"$ref": "#/components/schemas/Score"}, {"type": "null"}]},
        "candidates": {"type": "integer", "description": "the source's available candidates"},
        "above": {"type": "object", "description": "the candidate ranked just above: target, why"},
        "below": {"type": "object", "description": "the candidate ranked just below: target, why"},
        "text": {"type": "string", "description": "the explanation as `fastmatch explain` prints it"},
    },
}
_VERDICT = {
    "type": "object",
    "properties": {
        "compatible": {"type": "boolean"},
        "reasons": {"type": "array", "items": {"type": "string"}},
        "score": {"oneOf": [{"$ref": "#/components/schemas/Score"}, {"type": "null"}]},
        "explanation": {"type": "string"},
    },
}
_EXTENDER_ARGS = {
    "type": "object",
    "description": "k8s.io/kube-scheduler/extender/v1 ExtenderArgs; field names in any case (Pod or pod)",
    "properties": {
        "Pod": {"type": "object", "description": "the v1.Pod; its metadata.annotations name the source device"},
        "Nodes": {"type": "object", "description": "a v1.NodeList (when the extender is not nodeCacheCapable)"},
        "NodeNames": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["Pod"],
}
_ERROR = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}


def _operation(summary: str, request: Any, answer: dict[str, Any], *, get: bool = False) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "responses": {
            "200": {"description": "the answer", "content": {"application/json": {"schema": answer}}},
            "4XX": {"description": "refused; the message names the field", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
        },
    }
    if not get:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": request}}}
    return operation


def openapi_document() -> dict[str, Any]:
    (candidates, explain, check), components = msgspec.json.schema_components(
        [CandidatesRequest, ExplainRequest, CheckRequest], ref_template="#/components/schemas/{name}"
    )
    components.update(Score=_SCORE, Explanation=_EXPLANATION, Verdict=_VERDICT, Error=_ERROR, ExtenderArgs=_EXTENDER_ARGS, Record=_RECORD)
    ranked = {
        "type": "object",
        "properties": {
            "results": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "source": {"type": "string"},
                        "candidates": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {"target": {"type": "string"}, "rank": {"type": "integer"}, "score": {"$ref": "#/components/schemas/Score"}},
                            },
                        },
                    },
                },
            }
        },
    }
    verdict = {"$ref": "#/components/schemas/Verdict"}
    explanation = {"$ref": "#/components/schemas/Explanation"}
    args = {"$ref": "#/components/schemas/ExtenderArgs"}
    failed = {"type": "object", "additionalProperties": {"type": "string"}}
    summary = {"type": "object", "description": "targets, descriptors, nodes, available, capacity, origin, generation, loaded_at"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "fastmatch serve", "version": __version__, "description": "Where each VM's mediated device can live-migrate, for schedulers."},
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/v1/candidates": {"post": _operation("the k best available targets of each source", candidates, ranked)},
            "/v1/explain": {"post": _operation("why a source can or cannot go to a target of the fleet", explain, explanation)},
            "/v1/check": {"post": _operation("one source record against one target record", check, verdict)},
            "/v1/targets": {"post": _operation("replace the fleet (JSON Lines, JSON array, text or libvirt XML); a bad fleet is refused and the old one keeps serving", {"type": "string"}, summary)},
            "/v1/targets/summary": {"get": _operation("the fleet being served", None, summary, get=True)},
            "/k8s/filter": {"post": _operation("scheduler extender filter: ExtenderFilterResult", args, {"type": "object", "properties": {"NodeNames": {"type": ["array", "null"]}, "Nodes": {"type": "object"}, "FailedNodes": failed, "FailedAndUnresolvableNodes": failed, "Error": {"type": "string"}}})},
            "/k8s/prioritize": {"post": _operation("scheduler extender prioritize: HostPriorityList, scores 0-10", args, {"type": "array", "items": {"type": "object", "properties": {"Host": {"type": "string"}, "Score": {"type": "integer"}}}})},
            "/healthz": {"get": {**_operation("alive", None, {"type": "object"}, get=True), "security": []}},
            "/readyz": {"get": {**_operation("a fleet is loaded", None, {"type": "object", "description": "ready, targets, generation (of the fleet in service), process (the worker process that answered)"}, get=True), "security": []}},
            "/metrics": {"get": {"summary": "Prometheus metrics (text format)", "responses": {"200": {"description": "metrics", "content": {"text/plain": {}}}}}},
        },
    }
