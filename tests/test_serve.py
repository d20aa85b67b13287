"""``fastmatch serve``: the real server in a subprocess on a free loopback port, driven over HTTP.

Answers are held to the library on the same fleet (``fastmatch.match``, ``explain``,
``check``); the Kubernetes extender to golden ExtenderArgs fixtures in both spellings
(tests/data/k8s/) and to ``fastmatch.match``; malformed requests to a 4xx ``{"error"}`` that
names the field, with the server still serving after them."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("uvicorn")  # the serve extra, which the test extra pulls in

import fastmatch
from fastmatch.generate import write_fleet
from serving import AskingAllAlong, Server, expected_candidates, read_response, subprocess_env

K8S = Path(__file__).parent / "data" / "k8s"


# -- fleets --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """A generated fleet: 400 sources, 3,000 targets on at most 300 descriptors a side."""
    directory = tmp_path_factory.mktemp("fleet")
    write_fleet(directory, 400, 3000, 300, 7)
    policy = fastmatch.Policy.default()
    sources = fastmatch.load(directory / "sources.jsonl", policy)
    targets = fastmatch.load(directory / "targets.jsonl", policy)
    return directory, sources, targets


@pytest.fixture(scope="module")
def server(generated):
    directory, _, _ = generated
    with Server(["--targets", str(directory / "targets.jsonl"), "--body-timeout", "2", "--max-sources", "500"]) as running:
        yield running
    assert running.process.returncode == 0


@pytest.fixture(scope="module")
def k8s_server():
    with Server(["--targets", str(K8S / "targets.jsonl")]) as running:
        yield running


# -- the JSON API ----------------------------------------------------------------------------
def test_candidates_equal_match(server, generated):
    _, sources, targets = generated
    records = sources.to_records()[:120]
    status, answer = server.post("/v1/candidates", {"sources": records, "k": 5})
    assert status == 200
    assert answer["results"] == expected_candidates(targets, records, 5)
    assert sum(len(r["candidates"]) for r in answer["results"]) > 100  # most sources have somewhere to go
    for result in answer["results"]:
        assert [c["rank"] for c in result["candidates"]] == list(range(1, len(result["candidates"]) + 1))


def test_candidates_one_source_at_a_time_and_k_defaults(server, generated):
    _, sources, targets = generated
    for record in sources.to_records()[200:220]:
        status, answer = server.post("/v1/candidates", {"sources": [record]})
        assert status == 200
        assert answer["results"] == expected_candidates(targets, [record], 5)


def test_explain_equals_the_library(server, generated):
    _, sources, targets = generated
    records = sources.to_records()
    result = fastmatch.match(records[:40], targets)
    indices, _ = result.top_k(1)
    compatible = [i for i in range(40) if indices[i, 0] >= 0][:3]
    pairs = [(i, int(indices[i, 0])) for i in compatible] + [(0, 5), (1, 17), (2, 2999)]
    for i, j in pairs:
        status, answer = server.post("/v1/explain", {"source": records[i], "target": targets.ids[j]})
        assert status == 200
        assert answer == fastmatch.match([records[i]], targets).explanation(0, j)
    assert any(server.post("/v1/explain", {"source": records[i], "target": targets.ids[j]})[1]["compatible"] for i, j in pairs)
    assert not all(server.post("/v1/explain", {"source": records[i], "target": targets.ids[j]})[1]["compatible"] for i, j in pairs)


def test_check_equals_the_library(server, generated):
    _, sources, targets = generated
    for source, target in [(sources.to_records()[3], targets.to_records()[9]), (sources.to_records()[0], sources.to_records()[0] | {"id": "copy", "host": "elsewhere"})]:
        status, answer = server.post("/v1/check", {"source": source, "target": target})
        verdict = fastmatch.check(source, target)
        assert status == 200
        assert answer == {"compatible": verdict.compatible, "reasons": list(verdict.reasons), "score": verdict.parts, "explanation": verdict.explanation}
    assert answer["compatible"] and answer["score"]["exact"]


def test_summary_health_readiness(server, generated):
    _, _, targets = generated
    status, summary = server.get("/v1/targets/summary")
    assert status == 200
    assert summary["targets"] == len(targets) == 3000
    assert summary["descriptors"] == len(targets.descriptors)
    assert summary["nodes"] == len(set(targets.hosts) - {""})
    assert summary["available"] == int((targets.capacities > 0).sum())
    assert summary["generation"] == 1
    assert server.get("/healthz") == (200, {"status": "ok"})
    status, ready = server.get("/readyz")
    assert (status, ready) == (200, {"ready": True, "targets": 3000, "generation": 1, "process": ready["process"]})
    assert isinstance(ready["process"], int)  # which process answered (see test_serve_processes.py)


def test_openapi_describes_every_endpoint(server):
    status, document = server.get("/openapi.json")
    assert status == 200
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) >= {
        "/v1/candidates", "/v1/explain", "/v1/check", "/v1/targets", "/v1/targets/summary",
        "/k8s/filter", "/k8s/prioritize", "/healthz", "/readyz", "/metrics",
    }
    request = document["components"]["schemas"]["CandidatesRequest"]
    assert request["required"] == ["sources"] and request["additionalProperties"] is False


def test_metrics(server):
    server.post("/v1/candidates", {"sources": "nope"})
    status, text = server.get("/metrics")
    assert status == 200
    assert 'fastmatch_requests_total{endpoint="/v1/candidates",status="200"}' in text
    assert 'fastmatch_request_duration_seconds_bucket{endpoint="/v1/candidates",le="0.01"}' in text
    assert "fastmatch_fleet_targets 3000.0" in text
    assert 'fastmatch_errors_total{kind="request"}' in text


# -- malformed requests ------------------------------------------------------------------------
MALFORMED = [
    ("/v1/candidates", b"{not json", 400, "request body: JSON is malformed"),
    ("/v1/candidates", b"", 400, "request body: input data was truncated"),
    ("/v1/candidates", b"[]", 422, "request body: expected `object`, got `array`"),
    ("/v1/candidates", {"sources": {}}, 422, "field 'sources': expected `array`, got `object`"),
    ("/v1/candidates", {"sources": [1]}, 422, "field 'sources[0]': expected `object`, got `int`"),
    ("/v1/candidates", {"sources": [], "k": "5"}, 422, "field 'k': expected `int`, got `str`"),
    ("/v1/candidates", {"sources": [], "k": -1}, 422, "field 'k': expected an integer from 0"),
    ("/v1/candidates", {"sources": [], "top": 5}, 422, "field 'top': unknown field"),
    ("/v1/candidates", {"k": 5}, 422, "field 'sources': missing"),
    ("/v1/candidates", {"sources": [{"id": "a", "self": {"software_version": "v2+"}}]}, 422,
     "sources: record #0 'a': field 'self.software_version': invalid version 'v2+'"),
    ("/v1/candidates", {"sources": [{"id": "a", "self": {}}], "k": 1, "extra": {"x": 1}}, 422, "field 'extra': unknown field"),
    ("/v1/candidates", {"sources": [{"id": "a", "self": {}, "colour": 1}]}, 422, "record #0 'a': field 'colour': unknown key"),
    ("/v1/candidates", {"sources": [{"id": "a", "self": {}}, {"id": "a", "self": {}}]}, 422, "duplicate id 'a'"),
    ("/v1/candidates", {"sources": [{"id": f"s{n}", "self": {}} for n in range(501)]}, 413, "field 'sources': 501 items, more than the limit of 500"),
    ("/v1/explain", {"source": {"id": "a", "self": {}}, "target": "no-such-target"}, 404, "field 'target': no target with id 'no-such-target'"),
    ("/v1/explain", {"source": {"id": "a", "self": {}}}, 422, "field 'target': missing"),
    ("/v1/check", {"source": {"id": "a", "self": {}}, "target": {"id": "b", "self": {"pv_mode": 3}}}, 422, "field 'self.pv_mode'"),
    ("/k8s/filter", b"{}", 422, "field 'Pod': missing"),
    ("/k8s/filter", {"Pod": {}}, 422, "field 'NodeNames': missing"),
    ("/k8s/filter", {"Pod": {}, "NodeNames": "node-1"}, 422, "field 'NodeNames': expected `array | null`, got `str`"),
    ("/k8s/filter", {"Pod": {}, "NodeNames": ["a", 7]}, 422, "field 'NodeNames[1]': expected `str`, got `int`"),
    ("/k8s/filter", {"Pod": {"metadata": {"annotations": {"a": 1}}}, "NodeNames": []}, 422, "field 'Pod.metadata.annotations[...]': expected `str`, got `int`"),
    ("/k8s/filter", {"Pod": {}, "Nodes": {"items": [{"metadata": {"name": 3}}]}}, 422, "field 'Nodes.items[0].metadata.name': expected `str`"),
    ("/k8s/filter", {"Pod": {}, "NodeNames": [], "Extra": 1}, 422, "field 'Extra': unknown field"),
    ("/k8s/filter", {"Pod": {}, "pod": {}, "NodeNames": []}, 422, "Pod given twice"),
    ("/k8s/prioritize", {"Pod": {"metadata": {"annotations": {"fastmatch.io/source": "{"}}}, "NodeNames": []}, 422, "annotation 'fastmatch.io/source': not JSON"),
]


@pytest.mark.parametrize(("path", "body", "status", "message"), MALFORMED, ids=[f"{p} {m[:40]}" for p, _, _, m in MALFORMED])
def test_malformed_requests_are_refused_with_the_field(server, path, body, status, message):
    got, answer = server.post(path, body)
    assert got == status
    assert set(answer) == {"error"}
    assert message in answer["error"], answer["error"]
    assert "Traceback" not in answer["error"]
    assert server.get("/healthz") == (200, {"status": "ok"})


def test_unknown_routes_and_methods_answer_json(server):
    assert server.post("/v2/anything", {}) == (404, {"error": "POST /v2/anything: Not Found"})
    assert server.get("/v1/candidates") == (405, {"error": "GET /v1/candidates: Method Not Allowed"})


def test_body_over_the_limit(server):
    big = b'{"sources": [' + b" " * (10 << 20) + b"]}"
    assert server.post("/v1/candidates", big)[0] == 413
    # Without a Content-Length (chunked), the limit is counted as the body arrives.
    connection = server.connection()
    connection.putrequest("POST", "/v1/candidates")
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    chunk = b" " * (1 << 20)
    status = None
    try:
        for _ in range(12):
            connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        connection.send(b"0\r\n\r\n")
        status = connection.getresponse().status
    except (BrokenPipeError, ConnectionResetError):  # the server may answer and close before the last chunk
        status = 413
    finally:
        connection.close()
    assert status == 413
    assert server.get("/healthz")[0] == 200


def test_slow_client_gets_408_and_others_are_served_meanwhile(server, generated):
    _, sources, _ = generated
    slow = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        slow.sendall(b"POST /v1/candidates HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"sour")
        assert server.post("/v1/candidates", {"sources": sources.to_records()[:1]})[0] == 200
        answer = read_response(slow).decode()
    finally:
        slow.close()
    assert answer.startswith("HTTP/1.1 408")
    assert '{"error":"request body not received within 2 s"}' in answer


# -- the Kubernetes extender: golden fixtures ---------------------------------------------------
def _fixture(name: str):
    return json.loads((K8S / name).read_text())


GOLDEN_FAILED = {"gpu-node-4": "every compatible device on this node has capacity 0"}
GOLDEN_UNRESOLVABLE = {
    "gpu-node-1": "incompatible: SAME_HOST",
    "gpu-node-3": "incompatible: software_version",
    "gpu-node-5": "incompatible: mdev_type",
    "kbl-node-1": "incompatible: software_version, NO_RECORD",
    "cpu-node-1": "no fastmatch target device on this node",
}


def test_filter_golden_capitalised_node_names(k8s_server):
    status, answer = k8s_server.post("/k8s/filter", _fixture("filter_args.json"))
    assert status == 200
    assert answer == {
        "NodeNames": ["gpu-node-2", "gpu-node-6"],
        "FailedNodes": GOLDEN_FAILED,
        "FailedAndUnresolvableNodes": GOLDEN_UNRESOLVABLE,
        "Error": "",
    }


def test_filter_golden_lowercase_node_list(k8s_server):
    args = _fixture("filter_args_lowercase.json")
    status, answer = k8s_server.post("/k8s/filter", args)
    assert status == 200
    kept = [item for item in args["nodes"]["items"] if item["metadata"]["name"] in ("gpu-node-2", "gpu-node-6")]
    assert answer == {"Nodes": {"items": kept}, "FailedNodes": GOLDEN_FAILED, "FailedAndUnresolvableNodes": GOLDEN_UNRESOLVABLE, "Error": ""}


def test_prioritize_golden(k8s_server):
    status, answer = k8s_server.post("/k8s/prioritize", _fixture("prioritize_args.json"))
    assert status == 200
    # gpu-node-2 holds an identical device (the best), gpu-node-6 a compatible one, gpu-node-3 none.
    assert answer == [{"Host": "gpu-node-2", "Score": 10}, {"Host": "gpu-node-3", "Score": 0}, {"Host": "gpu-node-6", "Score": 1}]
    lowercase = {"pod": _fixture("prioritize_args.json")["Pod"], "nodenames": ["gpu-node-6", "gpu-node-2"]}
    assert k8s_server.post("/k8s/prioritize", lowercase) == (200, [{"Host": "gpu-node-6", "Score": 1}, {"Host": "gpu-node-2", "Score": 10}])


def test_pod_without_a_source_passes_everywhere(k8s_server):
    args = _fixture("filter_args_no_source.json")
    status, answer = k8s_server.post("/k8s/filter", args)
    assert (status, answer) == (200, {"NodeNames": args["NodeNames"], "FailedNodes": {}, "FailedAndUnresolvableNodes": {}, "Error": ""})
    status, answer = k8s_server.post("/k8s/prioritize", args)
    assert answer == [{"Host": name, "Score": 0} for name in args["NodeNames"]]


def test_bad_annotation_is_the_filter_error(k8s_server):
    args = _fixture("filter_args.json")
    record = json.loads(args["Pod"]["metadata"]["annotations"]["fastmatch.io/source"])
    record["self"]["software_version"] = "550..1"
    args["Pod"]["metadata"]["annotations"]["fastmatch.io/source"] = json.dumps(record)
    status, answer = k8s_server.post("/k8s/filter", args)
    assert status == 200  # the protocol's own channel: the scheduler reports Error as the pod's
    assert answer["NodeNames"] is None
    assert answer["Error"].startswith("pod ml/virt-launcher-vm-ml-01-x7k2p: annotation 'fastmatch.io/source': record #0 'vm-ml-01/gpu0': field 'self.software_version': invalid version '550..1'")


def _pod_with(records) -> dict:
    pod = _fixture("filter_args.json")["Pod"]
    pod["metadata"]["annotations"]["fastmatch.io/source"] = json.dumps(records)
    return pod


def test_a_vm_with_two_devices_needs_a_candidate_for_each(k8s_server):
    first = json.loads(_fixture("filter_args.json")["Pod"]["metadata"]["annotations"]["fastmatch.io/source"])
    second = {**first, "id": "vm-ml-01/gpu1", "self": {**first["self"], "software_version": "550.100.1"}}
    pod = _pod_with([first, second])
    nodes = ["gpu-node-2", "gpu-node-5", "gpu-node-6"]
    status, answer = k8s_server.post("/k8s/filter", {"Pod": pod, "NodeNames": nodes})
    # The second device needs a minor >= 100: of these nodes only gpu-node-2 (550.127.08) has one.
    assert (status, answer["NodeNames"], answer["FailedNodes"]) == (200, ["gpu-node-2"], {})
    assert answer["FailedAndUnresolvableNodes"] == {
        "gpu-node-5": "source 'vm-ml-01/gpu0': incompatible: mdev_type",
        "gpu-node-6": "source 'vm-ml-01/gpu1': incompatible: software_version",
    }
    status, answer = k8s_server.post("/k8s/prioritize", {"Pod": pod, "NodeNames": nodes})
    assert answer == [{"Host": "gpu-node-2", "Score": 10}, {"Host": "gpu-node-5", "Score": 0}, {"Host": "gpu-node-6", "Score": 0}]


def test_a_source_with_an_attribute_no_target_has(k8s_server):
    """Its rule fails on every target (the index takes the full path for it): no node passes."""
    record = json.loads(_fixture("filter_args.json")["Pod"]["metadata"]["annotations"]["fastmatch.io/source"])
    record["self"]["ecc"] = "on"
    status, answer = k8s_server.post("/k8s/filter", {"Pod": _pod_with(record), "NodeNames": ["gpu-node-2", "gpu-node-6"]})
    assert (status, answer["NodeNames"]) == (200, [])
    assert answer["FailedAndUnresolvableNodes"] == {"gpu-node-2": "incompatible: ecc", "gpu-node-6": "incompatible: ecc"}
    status, answer = k8s_server.post("/v1/candidates", {"sources": [record]})
    assert answer == {"results": [{"source": record["id"], "candidates": []}]}
    targets = fastmatch.load(K8S / "targets.jsonl")
    j = targets.ids.index("gpu-node-2/0000:af:00.0/nvidia-64")
    status, answer = k8s_server.post("/v1/explain", {"source": record, "target": targets.ids[j]})
    assert answer == fastmatch.match([record], targets).explanation(0, j)
    assert answer["reasons"] == ["ecc"]


def test_filter_and_prioritize_agree_with_match(server, generated):
    """On the generated fleet: a node passes exactly when one of its targets is among the
    source's available candidates (``match(...).top_k(all)``); priorities follow the best
    candidate's rank on each node."""
    _, sources, targets = generated
    hosts = np.array(targets.hosts)
    nodes = sorted(set(targets.hosts) - {""})
    records = sources.to_records()
    checked = 0
    for record in records[:60:3]:
        indices, scores = fastmatch.match([record], targets).top_k(len(targets))
        candidates = indices[0][indices[0] >= 0]
        expected = [n for n in nodes if n in set(hosts[candidates].tolist())]
        pod = {"metadata": {"name": "p", "annotations": {"fastmatch.io/source": json.dumps(record)}}}
        status, answer = server.post("/k8s/filter", {"Pod": pod, "NodeNames": nodes + ["not-a-node"]})
        assert status == 200
        assert answer["NodeNames"] == expected
        failed = set(answer["FailedNodes"]) | set(answer["FailedAndUnresolvableNodes"])
        assert failed == set(nodes + ["not-a-node"]) - set(expected)
        if record.get("host") in nodes and record["host"] not in expected:
            assert "SAME_HOST" in answer["FailedAndUnresolvableNodes"][record["host"]]
        status, priorities = server.post("/k8s/prioritize", {"Pod": pod, "NodeNames": nodes})
        best = {}
        for j, score in zip(indices[0].tolist(), scores[0].tolist()):
            if j >= 0:
                best.setdefault(hosts[j], score)  # best first
        given = {p["Host"]: p["Score"] for p in priorities}
        assert {n for n, s in given.items() if s > 0} == set(expected)
        for a in expected:
            for b in expected:
                if best[a] > best[b]:
                    assert given[a] >= given[b]
                if best[a] == best[b]:
                    assert given[a] == given[b]
        if expected:
            assert max(given.values()) == 10
            checked += 1
    assert checked >= 5



def test_a_node_list_sent_again_in_another_order_is_answered_in_that_order(server, generated):
    """The host codes of a node list are kept by its JSON text: the same nodes in another order,
    or one more, are another list, answered for what they say."""
    _, sources, targets = generated
    nodes = sorted(set(targets.hosts) - {""})
    record = sources.to_records()[0]
    pod = {"metadata": {"name": "p", "annotations": {"fastmatch.io/source": json.dumps(record)}}}
    _, first = server.post("/k8s/filter", {"Pod": pod, "NodeNames": nodes})
    _, again = server.post("/k8s/filter", {"Pod": pod, "NodeNames": nodes})
    _, reversed_ = server.post("/k8s/filter", {"Pod": pod, "NodeNames": nodes[::-1]})
    _, fewer = server.post("/k8s/filter", {"Pod": pod, "NodeNames": nodes[1:]})
    assert first["NodeNames"] and again == first
    assert reversed_["NodeNames"] == first["NodeNames"][::-1]
    assert reversed_["FailedAndUnresolvableNodes"] == first["FailedAndUnresolvableNodes"]
    assert fewer["NodeNames"] == [n for n in first["NodeNames"] if n != nodes[0]]


def test_node_lists_kept_are_bounded_in_count_and_size(generated, monkeypatch):
    from fastmatch.serve import fleet as fleet_module

    _, _, targets = generated
    nodes = fleet_module.Nodes(targets)
    classes = nodes.classes(np.zeros(len(targets), dtype=np.int64), 1)  # one class: the pairs are the nodes
    names = sorted(set(targets.hosts) - {""}) + ["not-a-node"]
    for n in range(fleet_module.RECENT_NODE_LISTS + 5):
        chosen = names[n:]
        asked = nodes.asked(classes, chosen, json.dumps(chosen).encode())
        assert asked.codes.tolist() == nodes.codes(chosen).tolist() and asked.codes[-1] == 0
        assert asked.segments.tolist() == list(range(len(chosen) - 1))  # each node one pair; not-a-node none
        assert nodes.asked(classes, chosen, json.dumps(chosen).encode()) is asked  # kept
    assert len(nodes._recent) == fleet_module.RECENT_NODE_LISTS
    assert json.dumps(names).encode() not in nodes._recent  # the oldest went first
    other = nodes.classes(np.arange(len(targets), dtype=np.int64), len(targets))  # another numbering
    assert nodes.asked(other, chosen, json.dumps(chosen).encode()).classes is other  # its own pairs
    assert nodes.recent_names(json.dumps(chosen).encode()) is chosen and nodes.recent_names(b'["x"]') is None
    monkeypatch.setattr(fleet_module, "RECENT_SIZE", 4 * len(names))  # names and pairs: room for two lists
    for chosen in (names[:-1], names[1:], names[2:]):
        nodes.asked(classes, chosen, json.dumps(chosen).encode())
    assert list(nodes._recent) == [json.dumps(names[1:]).encode(), json.dumps(names[2:]).encode()]
    monkeypatch.setattr(fleet_module, "RECENT_NODE_LIST_BYTES", 10)
    long_list = names[:3]
    assert nodes.asked(classes, long_list, json.dumps(long_list).encode()).codes.tolist() == nodes.codes(long_list).tolist()
    assert json.dumps(long_list).encode() not in nodes._recent


def test_connections_do_not_wait_for_delayed_acks():
    """The listening socket says it is TCP, so asyncio sets TCP_NODELAY on each connection: with
    it unset, an answer's body, written after its headers, waits for the client's delayed ACK."""
    import asyncio

    from fastmatch.serve.server import _listen

    listening = _listen("127.0.0.1", 0)
    port = listening.getsockname()[1]
    seen: list[int] = []

    async def main() -> None:
        def connected(reader, writer) -> None:
            seen.append(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(connected, sock=listening)
        async with server:
            _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
            for _ in range(100):
                if seen:
                    break
                await asyncio.sleep(0.01)
            writer.close()

    asyncio.run(main())
    assert len(seen) == 1 and seen[0] != 0


# -- the bearer token -------------------------------------------------------------------------------
def test_token_file(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    with Server(["--targets", str(K8S / "targets.jsonl"), "--token-file", str(token_file)]) as running:
        ask = {"sources": [{"id": "a", "self": {}}]}
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret-token"}, {"Authorization": "Bearer s3cret-token-and-more"}):
            status, answer, got_headers = running.request("POST", "/v1/candidates", ask, headers=headers)
            assert status == 401
            assert answer == {"error": "missing or wrong bearer token (Authorization: Bearer TOKEN)"}
            assert got_headers["www-authenticate"] == "Bearer"
        assert running.get("/metrics")[0] == 401
        assert running.post("/v1/candidates", ask, headers={"Authorization": "Bearer s3cret-token"})[0] == 200
        assert running.get("/healthz")[0] == 200  # probes need no token
        assert running.get("/readyz")[0] == 200


# -- the live fleet ----------------------------------------------------------------------------------
@pytest.mark.parametrize("processes", ["1", "2"])  # in the process started, or through its workers
def test_reload_by_post_and_sighup_and_a_bad_fleet_is_refused(tmp_path, generated, processes):
    directory, sources, targets = generated
    path = tmp_path / "targets.jsonl"
    path.write_text((K8S / "targets.jsonl").read_text())
    small = fastmatch.load(path)
    record = sources.to_records()[5]
    with Server(["--targets", str(path), "--processes", processes]) as running:
        assert running.post("/v1/candidates", {"sources": [record]})[1]["results"] == expected_candidates(small, [record], 5)

        status, summary = running.post("/v1/targets", (directory / "targets.jsonl").read_bytes())
        assert (status, summary["targets"], summary["generation"], summary["origin"]) == (200, 3000, 2, "POST /v1/targets")
        assert running.post("/v1/candidates", {"sources": [record]})[1]["results"] == expected_candidates(targets, [record], 5)

        bad = b'{"id": "t1", "self": {}}\n{"id": "t2", "self": {"software_version": "abc"}}\n'
        status, answer = running.post("/v1/targets", bad)
        assert status == 422
        assert answer["error"].startswith("fleet refused, the old one keeps serving: request body:2: record 't2': field 'self.software_version': invalid version 'abc'")
        assert running.get("/v1/targets/summary")[1]["generation"] == 2
        assert running.post("/v1/candidates", {"sources": [record]})[1]["results"] == expected_candidates(targets, [record], 5)

        running.process.send_signal(signal.SIGHUP)  # --targets again: the small fleet
        running.wait_for_log(r"SIGHUP: fleet 3 in service")
        assert running.get("/v1/targets/summary")[1]["targets"] == len(small)
        path.write_text('{"id": "x", "self": {"aggregator": "many"}}\n')
        running.process.send_signal(signal.SIGHUP)
        running.wait_for_log(r"SIGHUP: fleet refused, the old one keeps serving: .*targets.jsonl:1: record 'x': field 'self.aggregator'")
        assert running.get("/v1/targets/summary")[1]["generation"] == 3
        path.unlink()
        running.process.send_signal(signal.SIGHUP)
        running.wait_for_log(r"SIGHUP: fleet refused, the old one keeps serving: .*targets.jsonl: cannot read: No such file or directory")
        assert running.get("/v1/targets/summary")[1]["targets"] == len(small)
        _, metrics = running.get("/metrics")
        assert 'fastmatch_reloads_total{outcome="done"} 2.0' in metrics
        assert 'fastmatch_reloads_total{outcome="refused"} 3.0' in metrics
    assert running.process.returncode == 0


@pytest.mark.parametrize("processes", ["1", "2"])
def test_reload_under_load_fails_no_request(tmp_path, generated, processes):
    """Clients ask all along while the fleet is swapped back and forth: every answer is 200 and
    is the whole answer of one fleet or the other, never a mixture."""
    directory, sources, targets = generated
    small_path = K8S / "targets.jsonl"
    small = fastmatch.load(small_path)
    records = sources.to_records()[:4]
    answers = {
        json.dumps(expected_candidates(fleet, records, 3)) for fleet in (targets, small)
    }
    assert len(answers) == 2
    with Server(["--targets", str(directory / "targets.jsonl"), "--processes", processes]) as running:
        with AskingAllAlong(running, records, answers) as clients:
            for k in range(6):
                body = small_path.read_bytes() if k % 2 == 0 else (directory / "targets.jsonl").read_bytes()
                status, summary = running.post("/v1/targets", body)
                assert status == 200 and summary["generation"] == k + 2
                time.sleep(0.2)
    clients.check()
    assert running.process.returncode == 0


@pytest.mark.parametrize("processes", ["1", "2"])
def test_sigterm_finishes_requests_in_flight_then_exits_0(generated, processes):
    directory, sources, targets = generated
    record = sources.to_records()[0]
    body = json.dumps({"sources": [record]}).encode()
    with Server(["--targets", str(directory / "targets.jsonl"), "--processes", processes]) as running:
        in_flight = socket.create_connection(("127.0.0.1", running.port), timeout=20)
        head = b"POST /v1/candidates HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
        in_flight.sendall(head + body[:10])
        time.sleep(0.3)  # the server has the request: its handler is reading the body
        running.process.send_signal(signal.SIGTERM)
        running.wait_for_log(r"Shutting down|Waiting for")
        in_flight.sendall(body[10:])
        answer = read_response(in_flight)
        in_flight.close()
        assert answer.startswith(b"HTTP/1.1 200")
        status = running.stop()
    assert status == 0
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert json.loads(payload)["results"] == expected_candidates(targets, [record], 5)


# -- settings ------------------------------------------------------------------------------------------
def test_k8s_config_looks_the_device_up_in_a_sources_file(tmp_path):
    sources = tmp_path / "sources.jsonl"
    sources.write_text(
        json.dumps({"id": "mdev-7f3a", "host": "gpu-node-1", "vm": "vm-ml-01", "self": {
            "device_api": "vfio-pci", "vendor_driver": "nvidia", "device_id": "10de1eb8", "mdev_type": "nvidia-64", "software_version": "550.54.15"}}) + "\n"
    )
    config = tmp_path / "k8s.toml"
    config.write_text('[source]\nsources = "sources.jsonl"\ndevice = "annotation:example.com/mdev"\nnode = "label:example.com/source-node"\n')
    args = _fixture("filter_args.json")
    metadata = args["Pod"]["metadata"]
    metadata["annotations"] = {"example.com/mdev": "mdev-7f3a"}
    metadata["labels"]["example.com/source-node"] = "gpu-node-1"
    with Server(["--targets", str(K8S / "targets.jsonl"), "--k8s-config", str(config)]) as running:
        status, answer = running.post("/k8s/filter", args)
        assert (status, answer["NodeNames"], answer["FailedNodes"]) == (200, ["gpu-node-2", "gpu-node-6"], GOLDEN_FAILED)
        metadata["labels"]["example.com/source-node"] = "gpu-node-9"
        _, answer = running.post("/k8s/filter", args)
        assert answer["Error"] == (
            "pod ml/virt-launcher-vm-ml-01-x7k2p: device 'mdev-7f3a' is on host 'gpu-node-1' in "
            f"{sources}, but label 'example.com/source-node' says 'gpu-node-9'"
        )
        metadata["annotations"] = {"example.com/mdev": "mdev-0000"}
        _, answer = running.post("/k8s/filter", args)
        assert "names device 'mdev-0000', which is not in" in answer["Error"]
        assert running.get("/v1/targets/summary")[1]["source_devices"] == 1


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("[source]\ncolour = 1\n", "k8s.toml: field 'source.colour': unknown key"),
        ("[sources]\n", "k8s.toml: field 'sources': unknown section 'sources'"),
        ('[source]\nsources = "s.jsonl"\n', "k8s.toml: field 'source.device': with sources, device says where"),
        ('[source]\nsources = "s.jsonl"\ndevice = "env:X"\n', "k8s.toml: field 'source.device': expected 'annotation:NAME' or 'label:NAME', got 'env:X'"),
        ("[source\n", "k8s.toml: not a valid TOML file"),
    ],
)
def test_bad_settings_are_one_line_and_exit_2(tmp_path, config, message):
    path = tmp_path / "k8s.toml"
    path.write_text(config)
    proc = subprocess.run(
        [sys.executable, "-m", "fastmatch", "serve", "--targets", str(K8S / "targets.jsonl"), "--k8s-config", str(path), "--port", "0"],
        capture_output=True, text=True, env=subprocess_env(), timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("fastmatch: error: ")
    assert message in lines[0]


def test_a_bad_fleet_or_address_stops_the_server_before_it_serves(tmp_path):
    bad = tmp_path / "targets.jsonl"
    bad.write_text('{"id": "t", "self": {"software_version": "v2+"}}\n')
    taken = socket.create_server(("127.0.0.1", 0))  # a port in use
    for arguments, message in (
        (["--targets", str(bad)], f"{bad}:1: record 't': field 'self.software_version': invalid version 'v2+'"),
        (["--targets", "-"], "--targets must name a file"),
        (["--targets", str(bad), "--port", "70000"], "expected a port from 0 to 65535"),
        (["--targets", str(K8S / "targets.jsonl"), "--port", str(taken.getsockname()[1])], f"cannot listen on 127.0.0.1:{taken.getsockname()[1]}: Address already in use"),
        (["--targets", str(K8S / "targets.jsonl"), "--host", "192.0.2.1"], "cannot listen on 192.0.2.1:8080: Cannot assign requested address"),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "fastmatch", "serve", *arguments], capture_output=True, text=True, env=subprocess_env(), timeout=60, stdin=subprocess.DEVNULL,
        )
        assert proc.returncode == 2
        assert message in proc.stderr and len(proc.stderr.splitlines()) == 1
    taken.close()
