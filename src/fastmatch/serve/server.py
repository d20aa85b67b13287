"""Running the app under uvicorn: SIGHUP reloads the fleet, SIGTERM drains and exits 0."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys
from types import FrameType

import uvicorn

from ..errors import FastmatchError, printable
from .app import create_app
from .config import ServeConfig
from .fleet import FleetHolder

log = logging.getLogger("fastmatch.serve")


class _Server(uvicorn.Server):
    """uvicorn, with the fleet's SIGHUP reload."""

    def __init__(self, config: uvicorn.Config, holder: FleetHolder) -> None:
        super().__init__(config)
        self.holder = holder

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self._reload()))
        await super().startup(sockets)
        for server in self.servers:
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                # The port actually bound (--port 0 takes a free one): tests and scripts read it here.
                log.info("listening on http://%s:%d", host, port)

    async def _reload(self) -> None:
        try:
            fleet = await asyncio.get_running_loop().run_in_executor(None, self.holder.reload_file)
        except FastmatchError as exc:
            log.error("SIGHUP: fleet refused, the old one keeps serving: %s", printable(str(exc)))
        else:
            log.info("SIGHUP: fleet %d in service (%d targets)", fleet.generation, len(fleet.targets))


def serve(config: ServeConfig) -> None:
    """Load the fleet (an error stops here, before any port is bound), then serve until SIGTERM or Ctrl-C."""
    logging.basicConfig(level=logging.INFO, format="fastmatch serve: %(message)s", stream=sys.stderr)
    holder = FleetHolder(config)
    listening = _listen(config.host, config.port)
    app = create_app(config, holder)
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
        _Server(uv_config, holder).run(sockets=[listening])
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
