"""Serving from several processes: a supervisor and the workers it forks.

One process's Python (decoding, routing, formatting: most of a scheduler's small request) runs
on one core at a time, whatever its threads. So ``fastmatch serve --processes N`` loads the
fleet and binds the listening socket in the process it starts (the supervisor), then forks N
workers: each inherits both (the fleet's arrays shared copy-on-write) and runs its own uvicorn
on the one socket, where the kernel hands each new connection to one worker.

A reload (SIGHUP to the supervisor, or ``POST /v1/targets`` to any worker) goes through the
supervisor, one at a time, in two phases: every worker builds the new fleet beside the one it
serves (an upload is passed on in a file in the server's directory); when every one has built
it, every one swaps; when one cannot (a bad fleet), none swaps and the error goes back to the
client (or the log, for SIGHUP). The supervisor answers the client only when every worker
serves the new fleet.

SIGTERM or SIGINT to the supervisor: it sends SIGTERM to every worker, each drains (its
requests in flight finish) and exits, then the supervisor exits 0. A worker that ends any
other way stops the server with exit status 1, for whatever runs it (systemd, Kubernetes) to
start it again whole; a worker whose supervisor is gone drains and exits.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import threading
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from prometheus_client import multiprocess

from ..errors import FastmatchError, printable
from .app import Service
from .config import ServeConfig
from .fleet import Fleet, FleetHolder
from .metrics import Metrics
from .server import announce, run_uvicorn

log = logging.getLogger("fastmatch.serve")

Message = tuple[Any, ...]


class SupervisorChannel:
    """A worker's end of its pipe to the supervisor.

    Worker -> supervisor: ``("reload", number, upload path)``; ``("prepared", generation)`` or
    ``("refused", generation, message)``; ``("committed", generation, summary)``.
    Supervisor -> worker: ``("prepare", generation, upload path or None for --targets)``,
    ``("commit", generation)``, ``("abort", generation)``, ``("reloaded", number, done, summary or message)``.
    """

    def __init__(self, connection: multiprocessing.connection.Connection, uploads: str) -> None:
        self._connection = connection
        self._uploads = uploads
        self._send_lock = threading.Lock()  # request threads and the event loop both send
        self._numbers = itertools.count(1)
        self._waiting: dict[int, Future[tuple[bool, Any]]] = {}
        self._prepared: dict[int, Fleet] = {}
        self._service: Service | None = None

    def attach(self, service: Service) -> None:
        """The worker's service, whose fleet a reload replaces."""
        self._service = service

    def start(self, loop: asyncio.AbstractEventLoop, server: uvicorn.Server) -> None:
        """Read the supervisor's messages on ``loop`` (``server``'s, stopped when the supervisor is gone)."""
        loop.add_reader(self._connection.fileno(), self._receive, loop, server)

    def _send(self, message: Message) -> None:
        with self._send_lock:
            self._connection.send(message)

    def replace_with(self, body: bytes) -> dict[str, Any]:
        """``POST /v1/targets`` (a request thread): every worker's fleet replaced, or the error."""
        number = next(self._numbers)
        upload = os.path.join(self._uploads, f"{os.getpid()}-{number}")
        Path(upload).write_bytes(body)
        answer: Future[tuple[bool, Any]] = Future()
        self._waiting[number] = answer
        self._send(("reload", number, upload))
        done, summary = answer.result()
        if not done:
            raise FastmatchError(summary)
        result: dict[str, Any] = summary
        return result

    def _receive(self, loop: asyncio.AbstractEventLoop, server: uvicorn.Server) -> None:
        try:
            message = self._connection.recv()
        except (EOFError, OSError):
            loop.remove_reader(self._connection.fileno())
            log.error("worker %d: the supervisor is gone; stopping", os.getpid())
            for answer in self._waiting.values():
                answer.set_result((False, "the server is stopping"))
            self._waiting.clear()
            server.should_exit = True
            return
        kind, key = message[0], message[1]
        if kind == "reloaded":
            self._waiting.pop(key).set_result((message[2], message[3]))
        elif kind == "prepare":
            loop.create_task(self._prepare(key, message[2]))
        elif kind == "commit":
            fleet = self._prepared.pop(key)
            service = self._service
            assert service is not None
            service.holder.swap(fleet)
            service.metrics.fleet_loaded(fleet)
            self._send(("committed", key, fleet.summary()))
        elif kind == "abort":
            self._prepared.pop(key, None)

    async def _prepare(self, generation: int, upload: str | None) -> None:
        service = self._service
        assert service is not None
        holder = service.holder

        def build() -> Fleet:
            if upload is None:
                return holder.build_from_file(generation)
            return holder.build_from_body(Path(upload).read_bytes(), generation)

        try:
            self._prepared[generation] = await asyncio.get_running_loop().run_in_executor(None, build)
        except FastmatchError as exc:
            self._send(("refused", generation, str(exc)))
        except Exception:
            log.exception("worker %d: building fleet %d failed", os.getpid(), generation)
            self._send(("refused", generation, "internal error; the server's log has the details"))
        else:
            self._send(("prepared", generation))


def _work(config: ServeConfig, holder: FleetHolder, listening: socket.socket, connection: multiprocessing.connection.Connection,
          supervisor_ends: list[multiprocessing.connection.Connection], uploads: str, metrics_directory: str) -> None:
    """A worker process's life (forked: ``holder`` and ``listening`` are the supervisor's)."""
    for end in supervisor_ends:
        end.close()  # inherited: held open here, they would hide the supervisor's end from its workers
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the supervisor's to act on
    run_uvicorn(config, holder, listening, SupervisorChannel(connection, uploads), metrics_directory)


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    connection: multiprocessing.connection.Connection


@dataclass
class _Reload:
    worker: int | None  # who asked (None: SIGHUP)
    number: int = 0  # the worker's number for its request
    upload: str | None = None  # the uploaded fleet's file; None: --targets


class _WorkerEnded(Exception):
    @classmethod
    def of(cls, worker: _Worker) -> _WorkerEnded:
        worker.process.join(5)  # it has ended, or is ending: its exit status
        return cls(f"worker {worker.process.pid} ended (exit status {worker.process.exitcode})")


class Supervisor:
    """Forks the workers, passes reloads on to all of them, stops them on SIGTERM."""

    def __init__(self, config: ServeConfig, holder: FleetHolder, listening: socket.socket, directory: str, metrics_directory: str) -> None:
        self.config = config
        self.holder: FleetHolder | None = holder  # the workers', dropped here once they have it
        self.listening = listening
        self.uploads = os.path.join(directory, "uploads")
        os.mkdir(self.uploads)
        self.metrics_directory = metrics_directory
        self.generation = holder.fleet.generation
        self.workers: list[_Worker] = []
        self.pending: deque[_Reload] = deque()
        self.signals: list[int] = []

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT (0) or until a worker ends by itself (1)."""
        context = multiprocessing.get_context("fork")  # the fleet and the socket, inherited
        for _ in range(self.config.processes):
            mine, theirs = context.Pipe()
            supervisor_ends = [mine, *(worker.connection for worker in self.workers)]
            process = context.Process(
                target=_work, args=(self.config, self.holder, self.listening, theirs, supervisor_ends, self.uploads, self.metrics_directory),
            )
            process.start()
            theirs.close()
            self.workers.append(_Worker(process, mine))
        # Not kept here: after a reload the workers' fleets are new, and this copy would only take memory.
        self.holder = None
        announce(self.listening)
        self.listening.close()  # the workers' now
        self.metrics = Metrics(self.metrics_directory)  # the reloads are counted here, once each
        wake_up, woken = socket.socketpair()
        wake_up.setblocking(False)
        woken.setblocking(False)
        signal.set_wakeup_fd(wake_up.fileno())
        for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(number, lambda signum, frame: self.signals.append(signum))
        status = 0
        try:
            while True:
                self._messages(woken)  # reloads asked for are queued; nothing else is under way
                signals, self.signals = self.signals, []
                if signal.SIGTERM in signals or signal.SIGINT in signals:
                    break
                if signal.SIGHUP in signals:
                    self.pending.append(_Reload(None))
                while self.pending:
                    self._reload(self.pending.popleft())
        except _WorkerEnded as ended:
            log.error("%s: stopping the server", ended)
            status = 1
        finally:
            signal.set_wakeup_fd(-1)
            wake_up.close()
            woken.close()
            self._stop()
        return status

    def _messages(self, woken: socket.socket | None, workers: list[int] | None = None) -> list[tuple[int, Message]]:
        """The messages of ``workers`` (all by default) once one has sent any, or a signal has
        come (``woken``). Reloads asked for are queued, not returned; a worker that has ended
        raises :class:`_WorkerEnded`."""
        chosen = range(len(self.workers)) if workers is None else workers
        sentinels = [worker.process.sentinel for worker in self.workers]
        ready = multiprocessing.connection.wait([*(self.workers[i].connection for i in chosen), *sentinels, *([woken] if woken else [])])
        for worker in self.workers:
            if worker.process.sentinel in ready:
                raise _WorkerEnded.of(worker)
        if woken is not None and woken in ready:
            self._drain(woken)
        answers = []
        for i in chosen:
            if self.workers[i].connection not in ready:
                continue
            try:
                message = self.workers[i].connection.recv()
            except (EOFError, OSError):
                continue  # its sentinel says why, next time round
            if message[0] == "reload":
                self.pending.append(_Reload(i, message[1], message[2]))
            else:
                answers.append((i, message))
        return answers

    def _answers(self, expected: str, generation: int) -> dict[int, Message]:
        """Every worker's answer to the reload's phase under way (``expected``, or "refused")."""
        answers: dict[int, Message] = {}
        while len(answers) < len(self.workers):
            for i, message in self._messages(None, [i for i in range(len(self.workers)) if i not in answers]):
                if message[0] not in (expected, "refused") or message[1] != generation:
                    raise AssertionError(f"worker {i}: unexpected message {message!r} in reload {generation}")
                answers[i] = message
        return answers

    def _send_all(self, message: Message) -> None:
        for worker in self.workers:
            try:
                worker.connection.send(message)
            except OSError:
                raise _WorkerEnded.of(worker) from None

    def _reload(self, reload: _Reload) -> None:
        generation = self.generation + 1
        try:
            self._send_all(("prepare", generation, reload.upload))
            refusals = [message[2] for message in self._answers("prepared", generation).values() if message[0] == "refused"]
            if refusals:
                self._send_all(("abort", generation))
                done, summary = False, refusals[0]
            else:
                self._send_all(("commit", generation))
                done, summary = True, next(iter(self._answers("committed", generation).values()))[2]
                self.generation = generation
        finally:
            if reload.upload is not None:
                os.unlink(reload.upload)
        self.metrics.reloads.labels("done" if done else "refused").inc()
        if reload.worker is None:
            if done:
                log.info("SIGHUP: fleet %d in service (%d targets)", generation, summary["targets"])
            else:
                log.error("SIGHUP: fleet refused, the old one keeps serving: %s", printable(summary))
            return
        if done:
            log.info("fleet %d loaded from %s: %d targets", generation, summary["origin"], summary["targets"])
        self.workers[reload.worker].connection.send(("reloaded", reload.number, done, summary))

    @staticmethod
    def _drain(woken: socket.socket) -> None:
        try:
            while woken.recv(256):
                pass
        except BlockingIOError:
            pass

    def _stop(self) -> None:
        """SIGTERM to every worker; each drains and exits (killed if it has not within the drain
        time and a margin). A reload still asked for is refused: the server is stopping."""
        for reload in self.pending:
            if reload.upload is not None:
                os.unlink(reload.upload)
            if reload.worker is not None and self.workers[reload.worker].process.exitcode is None:
                self.workers[reload.worker].connection.send(("reloaded", reload.number, False, "the server is stopping"))
        for worker in self.workers:
            if worker.process.exitcode is None:
                worker.process.terminate()  # SIGTERM
        for worker in self.workers:
            worker.process.join(self.config.drain_timeout + 10)
            if worker.process.exitcode is None:
                log.error("worker %d did not stop within %g s of SIGTERM: killed", worker.process.pid, self.config.drain_timeout + 10)
                worker.process.kill()
                worker.process.join()
            multiprocess.mark_process_dead(worker.process.pid, self.metrics_directory)
            worker.connection.close()
