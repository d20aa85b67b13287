"""The Starlette application: routes, request limits, the bearer token, metrics, OpenAPI.

Every answer is computed in a worker thread on the fleet the request read when it began (the
kernel releases the GIL, so requests run side by side); the event loop only reads bodies and
writes answers. Every refusal is ``{"error": "..."}`` with a 4xx status and no traceback.
"""

from __future__ import annotations

import asyncio
import hmac
from concurrent.futures import ThreadPoolExecutor
import logging
import time
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
        self.holder.on_reload = self.reloaded
        self.metrics.fleet_loaded(self.holder.fleet)
        self._token = config.token.encode() if config.token else None
        # Requests are computed here, not in anyio's worker threads (Starlette's run_in_threadpool):
        # the event loop's side of anyio's hand-off (capacity limiter, cancel scopes, run vars)
        # cost about as much CPU as a one-source request's answer.
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

    def route(self, path: str, compute: Callable[[Fleet, bytes], Any], *, method: str = "POST", auth: bool = True, limit: int | None = None) -> Route:
        """``compute(fleet, body)`` behind the limits, the token and the metrics, in a worker thread."""
        metrics = self.metrics
        limit = self.config.max_body if limit is None else limit
        executor = self.executor
        latency = metrics.latency.labels(path)
        answered = {200: metrics.requests.labels(path, "200")}  # by status: the labels looked up once

        def answer(fleet: Fleet, data: bytes) -> Response:
            # encoded here, in the worker thread: the event loop only reads bodies and writes answers
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

    # -- the endpoints' computations (worker threads) -----------------------------------
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
        service.route("/healthz", lambda fleet, body: {"status": "ok"}, method="GET", auth=False),
        service.route("/readyz", lambda fleet, body: {"ready": True, "targets": len(fleet.targets), "generation": fleet.generation}, method="GET", auth=False),
        service.route("/openapi.json", lambda fleet, body: Response(document, media_type=JSON), method="GET", auth=False),
        service.route("/metrics", service.metrics_text, method="GET"),
        service.route("/v1/candidates", service.candidates),
        service.route("/v1/explain", service.explain),
        service.route("/v1/check", service.check),
        service.route("/v1/targets/summary", lambda fleet, body: fleet.summary(), method="GET"),
        service.route("/v1/targets", service.replace_targets, limit=config.max_fleet_body),
        service.route("/k8s/filter", service.k8s_filter),
        service.route("/k8s/prioritize", service.k8s_prioritize),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, HTTPException):  # (registered for HTTPException only)
            raise exc
        service.metrics.errors.labels("route").inc()
        return error_response(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}")

    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
    app.state.service = service
    return app
