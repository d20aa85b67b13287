"""A real ``fastmatch serve`` process on a free loopback port, for the tests: started with
``--port 0`` (the kernel picks a free port; the server logs it), stopped by SIGTERM, every
wait bounded."""

from __future__ import annotations

import http.client
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

import fastmatch

START_TIMEOUT = 60.0  # seconds to load the fleet and bind
STOP_TIMEOUT = 30.0
REQUEST_TIMEOUT = 30.0
_LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    package_root = str(Path(fastmatch.__file__).parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    return env


class Server:
    """``with Server(["--targets", path]) as server: server.post("/v1/candidates", {...})``"""

    def __init__(self, arguments: list[str], token: str | None = None, environment: dict[str, str] | None = None) -> None:
        self.arguments = arguments
        self.token = token
        self.environment = {**subprocess_env(), **(environment or {})}
        self.log: list[str] = []
        self.process: subprocess.Popen | None = None
        self.port = 0
        self._lines: queue.Queue[str | None] = queue.Queue()

    def __enter__(self) -> "Server":
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fastmatch", "serve", "--port", "0", *self.arguments],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=self.environment,
        )
        threading.Thread(target=self._read_stderr, daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.port:
            line = self.read_log_line(deadline - time.monotonic())
            if line is None:
                self.stop()
                raise AssertionError("the server did not start:\n" + "".join(self.log))
            found = _LISTENING.search(line)
            if found:
                self.port = int(found.group(1))
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _read_stderr(self) -> None:
        with self.process.stderr:  # closed at its end: the pipe is this thread's to close
            for line in self.process.stderr:
                self._lines.put(line)
        self._lines.put(None)

    def read_log_line(self, timeout: float) -> str | None:
        """The next line the server logs, or None at its end or after ``timeout`` seconds."""
        try:
            line = self._lines.get(timeout=max(timeout, 0.001))
        except queue.Empty:
            return None
        if line is None:
            self._lines.put(None)  # the end stays the end for the next reader
            return None
        self.log.append(line)
        return line

    def wait_for_log(self, pattern: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            line = self.read_log_line(deadline - time.monotonic())
            if line is None:
                raise AssertionError(f"the server never logged {pattern!r}:\n" + "".join(self.log))
            if re.search(pattern, line):
                return line

    def stop(self) -> int:
        """SIGTERM, then the exit status (killed, and an error, if it does not end in time)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError("the server did not stop within 30 s of SIGTERM") from None
        while self.read_log_line(1.0) is not None:
            pass
        return status

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                connection: http.client.HTTPConnection | None = None) -> tuple[int, Any, dict[str, str]]:
        """``(status, decoded JSON or text, headers)``; ``body`` bytes are sent as they are."""
        sent = dict(headers or {})
        if self.token is not None:
            sent.setdefault("Authorization", f"Bearer {self.token}")
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        own = connection is None
        connection = connection or self.connection()
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            data = response.read()
            answer_headers = {k.lower(): v for k, v in response.getheaders()}
        finally:
            if own:
                connection.close()
        if answer_headers.get("content-type", "").startswith("application/json"):
            return response.status, json.loads(data), answer_headers
        return response.status, data.decode(), answer_headers

    def post(self, path: str, body: Any, **options) -> tuple[int, Any]:
        status, answer, _ = self.request("POST", path, body, **options)
        return status, answer

    def get(self, path: str, **options) -> tuple[int, Any]:
        status, answer, _ = self.request("GET", path, **options)
        return status, answer


def expected_candidates(targets: fastmatch.DeviceSet, records: list[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """``/v1/candidates``'s results for ``records``, from the library on the same fleet."""
    result = fastmatch.match(records, targets)
    indices, scores = result.top_k(k)
    parts = result.score_parts(np.arange(len(records))[:, None], indices, scores)
    return [
        {
            "source": record["id"],
            "candidates": [
                {"target": targets.ids[j], "rank": rank, "score": parts.json((i, rank - 1))}
                for rank, j in enumerate(indices[i][indices[i] >= 0].tolist(), start=1)
            ],
        }
        for i, record in enumerate(records)
    ]


class AskingAllAlong:
    """Client threads asking ``/v1/candidates`` for ``records`` all along (each on its own
    connection, at most ``limit`` requests and 60 s), while the body of the ``with`` changes
    the fleet: every answer must be 200 and one of ``answers`` (whole answers' JSON texts)."""

    def __init__(self, running: Server, records: list[dict[str, Any]], answers: Any, clients: int = 4, limit: int = 2000) -> None:
        self.running, self.records, self.answers, self.limit = running, records, answers, limit
        self.failures: list[str] = []
        self.counts = [0] * clients
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._ask, args=(n,)) for n in range(clients)]

    def _ask(self, n: int) -> None:
        connection = self.running.connection()
        deadline = time.monotonic() + 60
        while not self._stop.is_set() and time.monotonic() < deadline and self.counts[n] < self.limit:
            body = {"sources": self.records, "k": 3}
            status, answer, _ = self.running.request("POST", "/v1/candidates", body, connection=connection)
            self.counts[n] += 1
            if status != 200 or json.dumps(answer["results"]) not in self.answers:
                self.failures.append(f"{status} {answer}"[:300])
        connection.close()

    def __enter__(self) -> "AskingAllAlong":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(70)

    def check(self) -> None:
        """No request failed, and the clients asked often enough for that to mean something."""
        assert not self.failures, self.failures[:3]
        assert sum(self.counts) >= 20


def read_response(connection: socket.socket) -> bytes:
    """One HTTP response read off a raw socket: the head, then Content-Length bytes."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = connection.recv(65536)
        if not chunk:
            return answer
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body
