"""``fastmatch serve`` under load, on loopback: what a scheduler waits for.

The server holds a prepared fleet of 100,000 targets on 2,000 distinct descriptors (``fastmatch
generate``) and runs in its own process; the load generator here keeps 1 or 8 clients busy,
each on its own keep-alive connection, each sending its next request when the last is
answered (closed loop). Two requests:

- ``/v1/candidates`` for one source (``k`` = 5);
- ``/k8s/filter`` with 5,000 ``NodeNames`` (a pod annotated with one source).

Each run is bounded: ``FASTMATCH_BENCH_SERVE_REQUESTS`` requests (default 400) or 60 seconds,
whichever comes first; p50, p99, requests/s and the server process's CPU time per request (the
steadier figure on a shared machine; its worker processes' too), and the load generator's own CPU
time per request (it runs on the same cores) go to ``extra_info``, and any request that is not
answered 200 fails the run. Then the GIL: ``test_kernel_call_does_not_hold_the_gil`` ticks a
thread beside a long kernel call; ``test_filter_requests_side_by_side`` runs filter requests
in one thread and in two at once, beside GIL-free work for scale; ``test_probe_beside_busy_requests``
measures how long a ``/healthz`` waits while other clients keep the server busy.

    python -m pytest benches/bench_serve.py --benchmark-json=serve.json
"""

from __future__ import annotations

import hashlib
import http.client
import itertools
import json
import os
import socket
import sys
import threading
import time

import numpy as np
import pytest

import fastmatch
import support

pytest.importorskip("uvicorn")  # the serve extra
sys.path.insert(0, str(support.ROOT / "tests"))
from serving import Server  # noqa: E402  (the tests' launcher: a free loopback port, SIGTERM at the end)

N_TARGETS = 100_000
DISTINCT = support.FLEET_DISTINCT
NODES = 5_000
REQUESTS = int(os.environ.get("FASTMATCH_BENCH_SERVE_REQUESTS", "400"))
PROCESSES = os.environ.get("FASTMATCH_BENCH_SERVE_PROCESSES")  # the server's --processes; unset: its default
TIME_LIMIT = 60.0  # seconds a run may take, whatever REQUESTS says


@pytest.fixture(scope="module")
def fleet():
    sources_path, targets_path = support.fleet_files(1000, N_TARGETS, DISTINCT)
    with open(sources_path, encoding="utf-8") as lines:
        sources = [json.loads(line) for line in itertools.islice(lines, 200)]
    with open(targets_path, encoding="utf-8") as lines:
        hosts = sorted({json.loads(line).get("host", "") for line in lines} - {""})
    nodes = [hosts[i] for i in np.random.default_rng(0).choice(len(hosts), min(NODES, len(hosts)), replace=False)]
    return targets_path, sources, nodes


@pytest.fixture(scope="module")
def server(fleet):
    targets_path, _, _ = fleet
    processes = ["--processes", PROCESSES] if PROCESSES else []
    with Server(["--targets", str(targets_path), "--threads", "8", *processes]) as running:
        yield running


def _bodies(endpoint: str, sources: list[dict], nodes: list[str]) -> list[bytes]:
    if endpoint == "/v1/candidates":
        return [json.dumps({"sources": [source], "k": 5}).encode() for source in sources]
    return [
        json.dumps({"Pod": {"metadata": {"name": f"virt-launcher-{n}", "annotations": {"fastmatch.io/source": json.dumps(source)}}},
                    "NodeNames": nodes}).encode()
        for n, source in enumerate(sources[:20])
    ]


def load(port: int, path: str, bodies: list[bytes], clients: int, count: int, seconds: float) -> dict:
    """``count`` requests (or ``seconds``) from ``clients`` closed-loop clients; latencies in seconds."""
    latencies: list[float] = []
    failures: list[str] = []
    issued = itertools.count()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.connect()
        # As a scheduler's client does (Go sets TCP_NODELAY on every connection): http.client
        # writes the headers and the body apart, and Nagle's algorithm may hold the second.
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        mine = []
        try:
            while time.monotonic() < deadline:
                n = next(issued)
                if n >= count:
                    break
                started = time.perf_counter()
                connection.request("POST", path, body=bodies[n % len(bodies)], headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                answer = response.read()
                mine.append(time.perf_counter() - started)
                if response.status != 200 or b'"Error":""' not in answer and path == "/k8s/filter":
                    failures.append(f"{response.status} {answer[:200]!r}")
        finally:
            connection.close()
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 60)
    elapsed = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {
        "requests": len(latencies),
        "errors": len(failures),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "requests_per_second": round(len(latencies) / elapsed, 1),
        "first_failure": failures[0] if failures else "",
    }


def _cpu_seconds(pid: int) -> float | None:
    """User and system CPU seconds so far of process ``pid`` and the processes it started (the
    server's workers), from Linux /proc; None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        children = []
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as listed:
                children += [int(child) for child in listed.read().split()]
    except OSError:
        return None
    seconds = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    return seconds + sum(_cpu_seconds(child) or 0.0 for child in children)


@pytest.mark.parametrize("clients", [1, 8])
@pytest.mark.parametrize("endpoint", ["/v1/candidates", "/k8s/filter"])
def test_serve_load(benchmark, server, fleet, endpoint, clients):
    _, sources, nodes = fleet
    bodies = _bodies(endpoint, sources, nodes)
    load(server.port, endpoint, bodies, clients, 20, 20)  # warm: first requests build per-fleet caches
    figures = {}

    def run():
        before = _cpu_seconds(server.process.pid)
        client_before = time.process_time()
        figures.update(load(server.port, endpoint, bodies, clients, REQUESTS, TIME_LIMIT))
        # the load generator shares the machine's cores with the server: what it took of them
        figures["client_cpu_ms_per_request"] = round((time.process_time() - client_before) / figures["requests"] * 1000, 2)
        if before is not None:
            # steadier than latency on a shared machine: what a request costs the server's cores
            figures["server_cpu_ms_per_request"] = round((_cpu_seconds(server.process.pid) - before) / figures["requests"] * 1000, 2)

    benchmark.group = f"serve: {N_TARGETS:,} targets on {DISTINCT:,} descriptors"
    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update({"endpoint": endpoint, "clients": clients, "nodes": len(nodes) if endpoint == "/k8s/filter" else 0, **figures})
    print(f"\n{endpoint} x {clients} clients: {figures}")
    assert figures["errors"] == 0, figures["first_failure"]
    assert figures["requests"] >= min(REQUESTS, 20)


def test_kernel_call_does_not_hold_the_gil(benchmark):
    """In one process, as in the server's worker threads: while a thread runs a large request's
    kernel call (``top_k`` of 2,000 sources against 100,000 prepared targets, every descriptor
    distinct so that the call is long; interning done before), a second thread ticks every
    millisecond. Were the GIL held for the whole call, the
    longest gap between ticks would be the call's length; released, it stays near the tick."""
    sources_path, targets_path = support.fleet_files(2000, N_TARGETS, N_TARGETS)
    index = fastmatch.TargetIndex(fastmatch.load(targets_path), workers=1)
    result = index.match(fastmatch.load(sources_path))
    result.top_k(5)  # warm
    figures: dict = {}

    def run():
        ticks = [time.perf_counter()]
        done = threading.Event()

        def ticker():
            while not done.is_set():
                time.sleep(0.001)
                ticks.append(time.perf_counter())

        thread = threading.Thread(target=ticker)
        thread.start()
        time.sleep(0.01)
        started = time.perf_counter()
        result.top_k(5)
        call = time.perf_counter() - started
        done.set()
        thread.join()
        times = np.array(ticks)
        inside = np.diff(times[(times >= started) & (times <= started + call)])
        figures.update({"kernel_call_ms": round(call * 1000, 1), "ticks_during_call": int(len(inside)),
                        "longest_tick_gap_ms": round(float(inside.max()) * 1000, 1) if len(inside) else None})

    benchmark.group = "serve: the GIL during a kernel call"
    benchmark.pedantic(run, rounds=3, iterations=1)
    benchmark.extra_info.update(figures)
    print(f"\nticker beside a kernel call: {figures}")
    assert figures["ticks_during_call"] > 0


def test_probe_beside_busy_requests(benchmark, server, fleet):
    """``/healthz`` latency while 2 clients keep the server busy with 200-source requests: the
    probe's p50 and p99 against the busy requests' p50 (the Python around the kernel, decoding and
    formatting 10,000 candidates, holds the GIL in turns with the event loop)."""
    _, sources, _ = fleet
    heavy = [json.dumps({"sources": sources, "k": 50}).encode()]
    busy: dict = {}
    figures: dict = {}

    def run():
        worker = threading.Thread(target=lambda: busy.update(load(server.port, "/v1/candidates", heavy, 2, 60, TIME_LIMIT)))
        worker.start()
        time.sleep(0.5)
        probes = []
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        while worker.is_alive() and len(probes) < 2000:
            started = time.perf_counter()
            connection.request("GET", "/healthz")
            connection.getresponse().read()
            probes.append(time.perf_counter() - started)
            time.sleep(0.005)
        connection.close()
        worker.join()
        ms = np.array(probes) * 1000
        figures.update({"probes": len(probes), "probe_p50_ms": round(float(np.percentile(ms, 50)), 2),
                        "probe_p99_ms": round(float(np.percentile(ms, 99)), 2), "busy_p50_ms": busy["p50_ms"]})

    benchmark.group = "serve: a probe beside busy requests"
    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(figures)
    print(f"\nhealthz beside 200-source requests: {figures}")
    assert busy["errors"] == 0


def _side_by_side(work, count: int) -> dict:
    """Wall seconds for ``count`` calls of ``work`` in one thread, then for ``count`` calls in
    each of two threads at once; the speed-up is 2.0 when the two never wait for each other,
    1.0 when they take turns throughout."""
    started = time.perf_counter()
    for _ in range(count):
        work()
    alone = time.perf_counter() - started
    threads = [threading.Thread(target=lambda: [work() for _ in range(count)]) for _ in range(2)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    together = time.perf_counter() - started
    return {"one_thread_ms": round(alone / count * 1000, 2), "two_threads_ms": round(together / count * 1000, 2),
            "speed_up": round(2 * alone / together, 2)}


def test_filter_requests_side_by_side(benchmark, fleet):
    """Do two worker threads answer filter requests side by side, or take turns on the GIL?
    In one process, as the server's worker threads run them: a 5,000-node ``/k8s/filter``
    request from its body to its JSON answer (decoding, the kernel's row, the node verdicts,
    the failing nodes' reasons, encoding), by one thread and by two at once. Beside it, for
    scale, work that runs without the GIL (hashing 4 MB with SHA-256): what two threads
    gain on this machine as loaded now. Where the filter gains less, the GIL is why: the
    kernel releases it, the Python and short NumPy calls around it do not."""
    from fastmatch.serve.app import Service
    from fastmatch.serve.config import ServeConfig

    targets_path, sources, nodes = fleet
    service = Service(ServeConfig(targets=str(targets_path), policy=fastmatch.Policy.default()))
    live = service.holder.fleet
    body = _bodies("/k8s/filter", sources, nodes)[0]
    block = bytes(4 << 20)
    figures: dict = {}

    def answer() -> None:
        service.k8s_filter(live, body)

    def run():
        answer()  # warm: the node list's pairs
        figures["filter"] = _side_by_side(answer, 60)
        figures["without_gil"] = _side_by_side(lambda: hashlib.sha256(block), 20)

    benchmark.group = "serve: two worker threads side by side"
    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(figures)
    print(f"\ntwo threads side by side: {figures}")
    assert figures["filter"]["speed_up"] > 0


def test_app_cpu_per_request(benchmark, fleet):
    """The server's own CPU per request without the sockets: the ASGI app driven in one process
    (request in, response out, as uvicorn hands them over), against the endpoint's computation
    alone (decoding, the answer, encoding), for a one-source candidates request and a 5,000-node
    filter. The difference is what routing, limits, metrics and any hand-off to a thread cost.
    CPU time, best of 5 rounds of 200 requests: the steadier figure on a shared machine."""
    import asyncio

    from fastmatch.serve.app import create_app, json_response
    from fastmatch.serve.config import ServeConfig

    targets_path, sources, nodes = fleet
    app = create_app(ServeConfig(targets=str(targets_path), policy=fastmatch.Policy.default()))
    service = app.state.service
    live = service.holder.fleet
    count, rounds = 200, 5
    figures: dict = {}

    async def call(path: str, body: bytes) -> None:
        sent: list[dict] = []
        received = False

        async def receive() -> dict:
            nonlocal received
            if received:  # the client has nothing more to send: wait as a connection would
                await asyncio.sleep(3600)
            received = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict) -> None:
            sent.append(message)

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
                 "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
                 "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
                 "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2)}
        await app(scope, receive, send)
        assert sent[0]["status"] == 200, sent

    def cpu_ms(work) -> float:
        best = float("inf")
        for _ in range(rounds):
            started = time.process_time()  # every thread's: a hand-off to a worker thread counts
            work()
            best = min(best, (time.process_time() - started) / count * 1000)
        return round(best, 3)

    def run():
        for path, compute in (("/v1/candidates", service.candidates), ("/k8s/filter", service.k8s_filter)):
            bodies = _bodies(path, sources, nodes)

            def alone() -> None:
                for n in range(count):
                    json_response(compute(live, bodies[n % len(bodies)]))

            async def through_app() -> None:
                for n in range(count):
                    await call(path, bodies[n % len(bodies)])

            alone()  # warm: the node list's pairs
            figures[path] = {"computation_cpu_ms": cpu_ms(alone), "app_cpu_ms": cpu_ms(lambda: asyncio.run(through_app()))}

    benchmark.group = "serve: the app's CPU per request, without sockets"
    benchmark.pedantic(run, rounds=1, iterations=1)
    service.executor.shutdown()
    benchmark.extra_info.update(figures)
    print(f"\napp CPU per request: {figures}")
    assert all(figure["app_cpu_ms"] > 0 for figure in figures.values())
