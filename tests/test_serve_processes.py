"""``fastmatch serve --processes 2``: two worker processes on one port, each asked on a
connection of its own (``/readyz`` names the process that answered).

Every worker answers as the library does; a reload (``POST /v1/targets`` to either, or SIGHUP)
reaches both before it is answered, under load, with no failed request; a bad fleet leaves both
on the old one; SIGTERM drains both and exits 0, leaving no temporary file behind; ``/metrics``
counts the requests of both; a worker that dies stops the server (exit 1)."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytest.importorskip("uvicorn")  # the serve extra, which the test extra pulls in

import fastmatch
from fastmatch.generate import write_fleet
from serving import AskingAllAlong, Server, expected_candidates, read_response

K8S = Path(__file__).parent / "data" / "k8s"
CONNECTION_TRIES = 200  # new connections made, at most, to find both workers


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """400 sources, 3,000 targets on at most 300 descriptors a side; and the 8-target fleet."""
    directory = tmp_path_factory.mktemp("fleet")
    write_fleet(directory, 400, 3000, 300, 7)
    policy = fastmatch.Policy.default()
    return directory, fastmatch.load(directory / "sources.jsonl", policy), fastmatch.load(directory / "targets.jsonl", policy)


@contextmanager
def per_process(server: Server) -> Iterator[dict[int, http.client.HTTPConnection]]:
    """A keep-alive connection to each of the server's two workers, by process id."""
    found: dict[int, http.client.HTTPConnection] = {}
    try:
        for _ in range(CONNECTION_TRIES):
            connection = server.connection()
            status, ready, _ = server.request("GET", "/readyz", connection=connection)
            assert status == 200
            if ready["process"] in found:
                connection.close()
            else:
                found[ready["process"]] = connection
            if len(found) == 2:
                break
        assert len(found) == 2, f"{CONNECTION_TRIES} connections all went to process {list(found)}"
        yield found
    finally:
        for connection in found.values():
            connection.close()


def generation_of(server: Server, connection: http.client.HTTPConnection) -> int:
    status, ready, _ = server.request("GET", "/readyz", connection=connection)
    assert status == 200
    return ready["generation"]


def test_every_process_answers_as_the_library(generated):
    directory, sources, targets = generated
    records = sources.to_records()[:60]
    with Server(["--targets", str(directory / "targets.jsonl"), "--processes", "2"]) as running:
        with per_process(running) as connections:
            assert running.process.pid not in connections  # the supervisor serves nothing itself
            for connection in connections.values():
                # one at a time (on the event loop) and all at once (in a worker thread)
                for record in records[:5]:
                    status, answer, _ = running.request("POST", "/v1/candidates", {"sources": [record]}, connection=connection)
                    assert (status, answer["results"]) == (200, expected_candidates(targets, [record], 5))
                status, answer, _ = running.request("POST", "/v1/candidates", {"sources": records, "k": 7}, connection=connection)
                assert (status, answer["results"]) == (200, expected_candidates(targets, records, 7))
    assert running.process.returncode == 0


def test_a_reload_under_load_reaches_every_process_before_it_is_answered(generated):
    """Clients ask all along, on connections to both workers, while the fleet is swapped back
    and forth by uploads to one worker or the other: every answer is 200 and the whole answer of
    one fleet; once an upload is answered, each worker answers from the new fleet."""
    directory, sources, targets = generated
    small = fastmatch.load(K8S / "targets.jsonl")
    records = sources.to_records()[:4]
    answers = {json.dumps(expected_candidates(fleet, records, 3)): fleet for fleet in (targets, small)}
    assert len(answers) == 2
    with Server(["--targets", str(directory / "targets.jsonl"), "--processes", "2"]) as running, per_process(running) as connections:
        with AskingAllAlong(running, records, answers, limit=3000) as clients:
            for k in range(6):
                fleet, path = (small, K8S / "targets.jsonl") if k % 2 == 0 else (targets, directory / "targets.jsonl")
                via = list(connections.values())[k % 2]  # each worker takes uploads in turn
                status, summary, _ = running.request("POST", "/v1/targets", path.read_bytes(), connection=via)
                assert (status, summary["generation"], summary["targets"]) == (200, k + 2, len(fleet))
                for connection in connections.values():
                    assert generation_of(running, connection) == k + 2
                    status, answer, _ = running.request("POST", "/v1/candidates", {"sources": records, "k": 3}, connection=connection)
                    assert answers[json.dumps(answer["results"])] is fleet
                time.sleep(0.2)
        _, metrics = running.get("/metrics")
    clients.check()
    assert 'fastmatch_reloads_total{outcome="done"} 6.0' in metrics  # counted once a reload, not once a worker
    assert running.process.returncode == 0


def test_a_bad_fleet_leaves_every_process_on_the_old_one(tmp_path, generated):
    directory, sources, targets = generated
    path = tmp_path / "targets.jsonl"
    path.write_bytes((directory / "targets.jsonl").read_bytes())
    record = sources.to_records()[3]
    expected = expected_candidates(targets, [record], 5)
    with Server(["--targets", str(path), "--processes", "2"]) as running, per_process(running) as by_process:
        connections = list(by_process.values())

        def everyone_serves(generation: int) -> None:
            for connection in connections:
                assert generation_of(running, connection) == generation
                status, answer, _ = running.request("POST", "/v1/candidates", {"sources": [record]}, connection=connection)
                assert answer["results"] == expected

        bad = b'{"id": "t1", "self": {}}\n{"id": "t2", "self": {"software_version": "abc"}}\n'
        status, answer, _ = running.request("POST", "/v1/targets", bad, connection=connections[1])
        assert status == 422
        assert answer["error"].startswith("fleet refused, the old one keeps serving: request body:2: record 't2': field 'self.software_version'")
        everyone_serves(1)

        path.write_text('{"id": "x", "self": {"aggregator": "many"}}\n')
        running.process.send_signal(signal.SIGHUP)
        running.wait_for_log(r"SIGHUP: fleet refused, the old one keeps serving: .*targets.jsonl:1: record 'x': field 'self.aggregator'")
        everyone_serves(1)

        path.write_bytes((directory / "targets.jsonl").read_bytes())
        running.process.send_signal(signal.SIGHUP)
        running.wait_for_log(r"SIGHUP: fleet 2 in service \(3000 targets\)")
        everyone_serves(2)
        _, metrics = running.get("/metrics")
        assert 'fastmatch_reloads_total{outcome="refused"} 2.0' in metrics
        assert 'fastmatch_reloads_total{outcome="done"} 1.0' in metrics
    assert running.process.returncode == 0


def test_sigterm_drains_every_process_then_exits_0_leaving_nothing_behind(tmp_path, generated):
    """A request in flight in each worker when SIGTERM comes is answered; the server exits 0, its
    workers are gone, and its temporary directory (metrics, uploads) is removed."""
    directory, sources, targets = generated
    record = sources.to_records()[0]
    body = json.dumps({"sources": [record]}).encode()
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    with Server(["--targets", str(directory / "targets.jsonl"), "--processes", "2"], environment={"TMPDIR": str(scratch)}) as running:
        assert [entry.name for entry in scratch.iterdir()][0].startswith("fastmatch-serve-")
        in_flight = []
        for _ in range(CONNECTION_TRIES):  # a raw connection to each worker
            raw = socket.create_connection(("127.0.0.1", running.port), timeout=20)
            raw.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
            process = json.loads(read_response(raw).partition(b"\r\n\r\n")[2])["process"]
            if process in dict(in_flight):
                raw.close()
            else:
                in_flight.append((process, raw))
            if len(in_flight) == 2:
                break
        assert len(in_flight) == 2
        head = b"POST /v1/candidates HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
        for _, raw in in_flight:
            raw.sendall(head + body[:10])  # the handler is reading the body
        time.sleep(0.3)
        running.process.send_signal(signal.SIGTERM)
        for _ in in_flight:
            running.wait_for_log(r"Shutting down")
        answers = []
        for _, raw in in_flight:
            raw.sendall(body[10:])
            answers.append(read_response(raw))
            raw.close()
        status = running.stop()
    assert status == 0
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 200")
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["results"] == expected_candidates(targets, [record], 5)
    for process, _ in in_flight:
        with pytest.raises(ProcessLookupError):
            os.kill(process, 0)
    assert list(scratch.iterdir()) == []


def _sample(metrics: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} (\S+)$", metrics, re.MULTILINE)
    assert found, f"{name} not in /metrics"
    return float(found.group(1))


def test_metrics_count_the_requests_of_every_process(generated):
    directory, sources, _ = generated
    records = sources.to_records()
    with Server(["--targets", str(directory / "targets.jsonl"), "--processes", "2"]) as running, per_process(running) as by_process:
        (first, one), (second, other) = by_process.items()
        for n in range(7):
            running.request("POST", "/v1/candidates", {"sources": [records[n]]}, connection=one)
        for n in range(5):
            running.request("POST", "/v1/candidates", {"sources": [records[n]]}, connection=other)
        running.request("POST", "/v1/candidates", {"sources": "nope"}, connection=other)
        scrapes = {}
        for process, connection in ((first, one), (second, other)):
            status, text, _ = running.request("GET", "/metrics", connection=connection)
            assert status == 200
            scrapes[process] = text
    for text in scrapes.values():  # either worker reports the whole server
        assert _sample(text, 'fastmatch_requests_total{endpoint="/v1/candidates",status="200"}') == 12
        assert _sample(text, 'fastmatch_request_duration_seconds_count{endpoint="/v1/candidates"}') == 13
        assert _sample(text, 'fastmatch_requests_total{endpoint="/v1/candidates",status="422"}') == 1
        assert _sample(text, 'fastmatch_errors_total{kind="request"}') == 1
        assert _sample(text, 'fastmatch_requests_total{endpoint="/readyz",status="200"}') >= 2
        assert _sample(text, "fastmatch_fleet_targets") == 3000  # the fleet's figures: not summed
        assert _sample(text, "fastmatch_fleet_generation") == 1
        assert _sample(text, "fastmatch_requests_in_flight") == 1  # the scrape itself
    assert running.process.returncode == 0


def test_a_worker_that_dies_stops_the_server_with_status_1(generated):
    directory, _, _ = generated
    with Server(["--targets", str(directory / "targets.jsonl"), "--processes", "2"]) as running:
        with per_process(running) as connections:
            victim = next(iter(connections))
        os.kill(victim, signal.SIGKILL)
        running.wait_for_log(rf"worker {victim} ended \(exit status -9\): stopping the server")
        assert running.process.wait(30) == 1


def test_workers_stop_when_the_supervisor_is_gone(generated):
    directory, _, _ = generated
    with Server(["--targets", str(directory / "targets.jsonl"), "--processes", "2"]) as running:
        with per_process(running) as connections:
            workers = list(connections)
        running.process.kill()
        running.process.wait(30)
        for worker in workers:
            running.wait_for_log(r"worker \d+: the supervisor is gone; stopping")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_alive(worker) for worker in workers):
            time.sleep(0.1)
        assert not any(_alive(worker) for worker in workers)


def _alive(process: int) -> bool:
    try:
        os.kill(process, 0)
    except ProcessLookupError:
        return False
    return True
