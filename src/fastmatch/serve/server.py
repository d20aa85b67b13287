"""Running the app under uvicorn: SIGHUP reloads the fleet, SIGTERM drains and exits 0; with
several processes, a supervisor and its workers (``workers``)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import tempfile
from types import FrameType
from typing import TYPE_CHECKING

import uvicorn

from ..errors import FastmatchError, printable
from .config import ServeConfig
from .fleet import FleetHolder

if TYPE_CHECKING:
    from .workers import SupervisorChannel

log = logging.getLogger("fastmatch.serve")


class _Server(uvicorn.Server):
    """uvicorn, with the fleet's SIGHUP reload (one process) or the supervisor's pipe (a worker)."""

    def __init__(self, config: uvicorn.Config, holder: FleetHolder, channel: SupervisorChannel | None) -> None:
        super().__init__(config)
        self.holder = holder
        self.channel = channel

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        loop = asyncio.get_running_loop()
        if self.channel is not None:
            self.channel.start(loop, self)
            await super().startup(sockets)
            return
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self._reload()))
        await super().startup(sockets)
        for server in self.servers:
            for sock in server.sockets:
                announce(sock)

    async def _reload(self) -> None:
        try:
            fleet = await asyncio.get_running_loop().run_in_executor(None, self.holder.reload_file)
        except FastmatchError as exc:
            log.error("SIGHUP: fleet refused, the old one keeps serving: %s", printable(str(exc)))
        else:
            log.info("SIGHUP: fleet %d in service (%d targets)", fleet.generation, len(fleet.targets))


def announce(listening: socket.socket) -> None:
    host, port = listening.getsockname()[:2]
    # The port actually bound (--port 0 takes a free one): tests and scripts read it here.
    log.info("listening on http://%s:%d", host, port)


def serve(config: ServeConfig) -> None:
    """Load the fleet (an error stops here, before any port is bound), then serve until SIGTERM
    or Ctrl-C: in this process, or from ``config.processes`` worker processes."""
    logging.basicConfig(level=logging.INFO, format="fastmatch serve: %(message)s", stream=sys.stderr)
    holder = FleetHolder(config)
    listening = _listen(config.host, config.port)
    if config.processes == 1:
        run_uvicorn(config, holder, listening)
        return
    with tempfile.TemporaryDirectory(prefix="fastmatch-serve-") as directory:
        metrics_directory = os.path.join(directory, "metrics")
        os.mkdir(metrics_directory)
        # Read when prometheus_client is first imported, which is after this (app.py and
        # metrics.py are imported by the workers' code, below, and nowhere before).
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_directory
        from .workers import Supervisor

        supervisor = Supervisor(config, holder, listening, directory, metrics_directory)
        del holder  # the supervisor's, to give its workers and drop
        status = supervisor.run()
    if status:
        raise SystemExit(status)


def run_uvicorn(
    config: ServeConfig, holder: FleetHolder, listening: socket.socket,
    channel: SupervisorChannel | None = None, metrics_directory: str | None = None,
) -> None:
    """The app on ``listening`` until SIGTERM has drained it."""
    from .app import create_app

    app = create_app(config, holder, channel=channel, metrics_directory=metrics_directory)
    uv_config = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        log_level="info",
        access_log=False,
        limit_concurrency=config.max_connections,
        timeout_graceful_shutdown=int(config.drain_timeout),
        lifespan="off",
    )
    # On SIGTERM uvicorn stops accepting, lets the requests in flight finish, puts back the
    # handler it found, and raises the signal again. A drained shutdown is how a service is
    # meant to end (Kubernetes and systemd stop it so): the handler it finds lets it end in 0.
    previous = signal.signal(signal.SIGTERM, _drained)
    try:
        _Server(uv_config, holder, channel).run(sockets=[listening])
    finally:
        signal.signal(signal.SIGTERM, previous)
        app.state.service.executor.shutdown()


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that a port in use or an address not on this host is
    one error line and exit status 2 (uvicorn would log it and exit 1)."""
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        # IPPROTO_TCP named, not 0 (socket.create_server's): asyncio sets TCP_NODELAY only on
        # the connections of a socket that says it is TCP, and without it a small answer's body
        # (written after its headers) waits for the client's delayed ACK, 40 ms on Linux.
        listening = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                listening.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            listening.bind(address)
            listening.listen(2048)
        except OSError:
            listening.close()
            raise
        return listening
    except OSError as exc:
        raise FastmatchError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _drained(signum: int, frame: FrameType | None) -> None:
    """SIGTERM once uvicorn has drained: nothing is left to do."""
