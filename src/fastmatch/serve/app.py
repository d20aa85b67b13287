"""The Starlette application: routes, request limits, the bearer token, metrics, OpenAPI.

Every answer is computed on the fleet the request read when it began. A small request (a
scheduler's: one pod and its node list; a few candidates for a source) is answered on the event
loop, start to end: handing it to a thread and back cost about a third of its CPU (a one-source
candidates request with 8 clients: 1.5 ms of server CPU through a thread, 1.0 ms on the loop;
the threads and the event loop take turns on the GIL), and other processes serve meanwhile
(``workers``). A larger one is computed in a worker thread (the kernel releases the GIL), so the
event loop keeps reading and answering the small ones. Every refusal is ``{"error": "..."}`` with a 4xx status and no traceback.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import FastmatchError
from . import api, k8s
from .config import ServeConfig
from .fleet import Fleet, FleetHolder
from .metrics import Metrics
from .openapi import openapi_document
from .requests import CandidatesRequest, CheckRequest, ExplainRequest, RequestError, decode

if TYPE_CHECKING:
    from .workers import SupervisorChannel

log = logging.getLogger("fastmatch.serve")
JSON = "application/json"

# Which requests are answered on the event loop; the largest blocks it for about 10 ms (a
# 256 KiB node list: ~15,000 names) on this project's 2-core test machine.
KiB = 1024
INLINE_CANDIDATES = 100  # candidates asked for (sources x k): formatting them is most of the work
INLINE_RECORDS = 64 * KiB  # explain and check: one or two records
INLINE_NODE_LISTS = 256 * KiB  # ExtenderArgs: a pod and its node list (5,000 NodeNames: 75 KiB, 3 ms)


class _AnswerSize(msgspec.Struct):
    """What sizes a candidates answer (the rest of the body is decoded with the request)."""

    sources: list[msgspec.Raw]
    k: int = 5


def always(body: bytes) -> bool:
    return True


def never(body: bytes) -> bool:
    return False


def shorter_than(size: int) -> Callable[[bytes], bool]:
    return lambda body: len(body) < size


def few_candidates(body: bytes) -> bool:
    """At most INLINE_CANDIDATES asked for; a malformed body too (its error is quickly said)."""
    if len(body) >= INLINE_RECORDS:  # many sources, surely: not worth decoding twice
        return False
    try:
        size = msgspec.json.decode(body, type=_AnswerSize)
    except msgspec.MsgspecError:
        return True
    return len(size.sources) * max(size.k, 1) <= INLINE_CANDIDATES


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(payload), status_code=status, media_type=JSON)


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response({"error": message}, status) if headers is None else Response(
        msgspec.json.encode({"error": message}), status_code=status, media_type=JSON, headers=headers
    )


class Service:
    """The app's state: settings, the live fleet, metrics. In a worker process (``channel``: its
    pipe to the supervisor), a fleet upload is the supervisor's to put into every worker's service."""

    def __init__(self, config: ServeConfig, holder: FleetHolder | None = None, *,
                 channel: SupervisorChannel | None = None, metrics_directory: str | None = None) -> None:
        self.config = config
        self.metrics = Metrics(metrics_directory)
        self.channel = channel
        self.holder = holder or FleetHolder(config)
        if channel is not None:
            channel.attach(self)
        self.holder.on_reload = self.reloaded
        self.metrics.fleet_loaded(self.holder.fleet)
        self._token = config.token.encode() if config.token else None
        # Requests are computed here, not in anyio's worker threads (Starlette's run_in_threadpool):
        # the event loop's side of anyio's hand-off (capacity limiter, cancel scopes, run vars)
        # cost up to about as much CPU as a one-source request's answer.
        self.executor = ThreadPoolExecutor(config.threads, thread_name_prefix="fastmatch-request")

    def reloaded(self, outcome: str, fleet: Fleet) -> None:
        self.metrics.reloads.labels(outcome).inc()
        if outcome == "done":
            self.metrics.fleet_loaded(fleet)
            log.info("fleet %d loaded from %s: %d targets", fleet.generation, fleet.origin, len(fleet.targets))

    def authorise(self, request: Request) -> None:
        if self._token is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        # Constant time: how much of a guess matches never shows in how long the refusal takes.
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self._token):
            raise RequestError(401, "missing or wrong bearer token (Authorization: Bearer TOKEN)", kind="auth")

    async def body(self, request: Request, limit: int) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise RequestError(413, f"request body of {declared} bytes, over the limit of {limit:,}", kind="size")
        chunks, size = [], 0
        try:
            async with asyncio.timeout(self.config.body_timeout):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise RequestError(413, f"request body over the limit of {limit:,} bytes", kind="size")
                    chunks.append(chunk)
        except TimeoutError:
            raise RequestError(408, f"request body not received within {self.config.body_timeout:g} s", kind="timeout") from None
        return b"".join(chunks)

    def route(
        self, path: str, compute: Callable[[Fleet, bytes], Any], *,
        method: str = "POST", auth: bool = True, limit: int | None = None, inline: Callable[[bytes], bool] = never,
    ) -> Route:
        """``compute(fleet, body)`` behind the limits, the token and the metrics: on the event loop
        when ``inline(body)`` says so, else in a worker thread."""
        metrics = self.metrics
        limit = self.config.max_body if limit is None else limit
        executor = self.executor
        latency = metrics.latency.labels(path)
        answered = {200: metrics.requests.labels(path, "200")}  # by status: the labels looked up once

        def answer(fleet: Fleet, data: bytes) -> Response:
            computed = compute(fleet, data)
            return computed if isinstance(computed, Response) else json_response(computed)

        async def handle(request: Request) -> Response:
            started = time.perf_counter()
            metrics.in_flight.inc()
            try:
                if auth:
                    self.authorise(request)
                data = await self.body(request, limit) if method == "POST" else b""
                fleet = self.holder.fleet  # read once: a reload meanwhile does not change this request's fleet
                if inline(data):
                    response = answer(fleet, data)
                else:
                    response = await asyncio.get_running_loop().run_in_executor(executor, answer, fleet, data)
            except RequestError as exc:
                metrics.errors.labels(exc.kind).inc()
                headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
                response = error_response(exc.status, exc.message, headers)
            except FastmatchError as exc:
                metrics.errors.labels("input").inc()
                response = error_response(422, str(exc))
            except Exception:
                log.exception("%s failed", path)
                metrics.errors.labels("internal").inc()
                response = error_response(500, "internal error; the server's log has the details")
            finally:
                metrics.in_flight.dec()
            status = response.status_code
            counter = answered.get(status)
            if counter is None:
                counter = answered[status] = metrics.requests.labels(path, str(status))
            counter.inc()
            latency.observe(time.perf_counter() - started)
            return response

        return Route(path, handle, methods=[method])

    # -- the endpoints' computations (the event loop or a worker thread) ------------------
    def candidates(self, fleet: Fleet, body: bytes) -> dict[str, Any]:
        config = self.config
        return api.candidates(fleet, decode(body, CandidatesRequest), config.max_sources, config.max_k)

    def explain(self, fleet: Fleet, body: bytes) -> dict[str, Any]:
        return api.explain(fleet, decode(body, ExplainRequest))

    def check(self, fleet: Fleet, body: bytes) -> dict[str, Any]:
        return api.check_pair(fleet, decode(body, CheckRequest))

    def replace_targets(self, fleet: Fleet, body: bytes) -> dict[str, Any]:
        try:
            return self.holder.replace_with(body).summary() if self.channel is None else self.channel.replace_with(body)
        except FastmatchError as exc:
            raise RequestError(422, f"fleet refused, the old one keeps serving: {exc}", kind="fleet") from None

    def k8s_filter(self, fleet: Fleet, body: bytes) -> dict[str, Any]:
        return k8s.filter_nodes(fleet, self.config.k8s, k8s.decode_args(body, fleet.nodes.recent_names))

    def k8s_prioritize(self, fleet: Fleet, body: bytes) -> list[dict[str, Any]]:
        return k8s.prioritize_nodes(fleet, self.config.k8s, k8s.decode_args(body, fleet.nodes.recent_names))

    def metrics_text(self, fleet: Fleet, body: bytes) -> Response:
        return Response(self.metrics.exposition(), media_type=self.metrics.content_type)


def create_app(config: ServeConfig, holder: FleetHolder | None = None, *,
               channel: SupervisorChannel | None = None, metrics_directory: str | None = None) -> Starlette:
    service = Service(config, holder, channel=channel, metrics_directory=metrics_directory)
    document = msgspec.json.encode(openapi_document())
    routes = [
        service.route("/healthz", lambda fleet, body: {"status": "ok"}, method="GET", auth=False, inline=always),
        # "process": which worker process answered (with --processes N, each answers from its own fleet)
        service.route("/readyz", lambda fleet, body: {"ready": True, "targets": len(fleet.targets), "generation": fleet.generation, "process": os.getpid()}, method="GET", auth=False, inline=always),
        service.route("/openapi.json", lambda fleet, body: Response(document, media_type=JSON), method="GET", auth=False, inline=always),
        service.route("/metrics", service.metrics_text, method="GET"),
        service.route("/v1/candidates", service.candidates, inline=few_candidates),
        service.route("/v1/explain", service.explain, inline=shorter_than(INLINE_RECORDS)),
        service.route("/v1/check", service.check, inline=shorter_than(INLINE_RECORDS)),
        service.route("/v1/targets/summary", lambda fleet, body: fleet.summary(), method="GET", inline=always),
        service.route("/v1/targets", service.replace_targets, limit=config.max_fleet_body),
        service.route("/k8s/filter", service.k8s_filter, inline=shorter_than(INLINE_NODE_LISTS)),
        service.route("/k8s/prioritize", service.k8s_prioritize, inline=shorter_than(INLINE_NODE_LISTS)),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, HTTPException):  # (registered for HTTPException only)
            raise exc
        service.metrics.errors.labels("route").inc()
        return error_response(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}")

    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
    app.state.service = service
    return app
