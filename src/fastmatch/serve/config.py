"""The server's settings, and where the Kubernetes adapter finds a pod's source device."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import FastmatchError
from ..files import read_input
from ..policy import Policy

DEFAULT_ANNOTATION = "fastmatch.io/source"
MiB = 1 << 20


@dataclass(frozen=True)
class PodField:
    """Where a pod carries a value: one of its annotations or one of its labels."""

    kind: str  # "annotation" or "label"
    name: str

    @classmethod
    def parse(cls, text: object, file: str, key: str) -> "PodField":
        kind, _, name = str(text).partition(":") if isinstance(text, str) else ("", "", "")
        if kind not in ("annotation", "label") or not name:
            raise FastmatchError(f"expected 'annotation:NAME' or 'label:NAME', got {text!r}", file=file, field=key)
        return cls(kind, name)

    def __str__(self) -> str:
        return f"{self.kind} {self.name!r}"


@dataclass(frozen=True)
class K8sConfig:
    """How a pod names its source device (``--k8s-config FILE``, TOML, section ``[source]``).

    By default the pod's annotation ``fastmatch.io/source`` holds the record as JSON (an object,
    or an array of the records of a VM with several devices); ``annotation = NAME`` names another.
    Or ``sources = FILE`` (a fleet file of the source devices, read with the targets) with
    ``device = "annotation:NAME"`` or ``"label:NAME"``, where the pod gives its device's id,
    and optionally ``node = ...``, where it gives the node the device is on (the record's host
    must be that node).
    """

    annotation: str = DEFAULT_ANNOTATION
    sources: Path | None = None
    device: PodField | None = None
    node: PodField | None = None

    @classmethod
    def from_toml(cls, path: str) -> "K8sConfig":
        try:
            document = tomllib.loads(read_input(path).decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise FastmatchError(f"not a valid TOML file: {exc}", file=path) from None
        unknown = sorted(set(document) - {"source"})
        if unknown:
            raise FastmatchError(f"unknown section {unknown[0]!r} (expected [source])", file=path, field=unknown[0])
        section = document.get("source", {})
        if not isinstance(section, dict):
            raise FastmatchError("expected a table [source]", file=path, field="source")
        known = {"annotation", "sources", "device", "node"}
        for key in sorted(set(section) - known):
            raise FastmatchError(f"unknown key (expected {', '.join(sorted(known))})", file=path, field=f"source.{key}")
        annotation = section.get("annotation", DEFAULT_ANNOTATION)
        if not isinstance(annotation, str) or not annotation:
            raise FastmatchError(f"expected a non-empty string, got {annotation!r}", file=path, field="source.annotation")
        sources = section.get("sources")
        if sources is None:
            for key in ("device", "node"):
                if key in section:
                    raise FastmatchError("needs source.sources, the file to look the device up in", file=path, field=f"source.{key}")
            return cls(annotation=annotation)
        if not isinstance(sources, str) or not sources:
            raise FastmatchError(f"expected a file name, got {sources!r}", file=path, field="source.sources")
        if "annotation" in section:
            raise FastmatchError("give either annotation (the record itself) or sources (a file to look it up in)", file=path, field="source.annotation")
        if "device" not in section:
            raise FastmatchError("with sources, device says where the pod gives its device's id", file=path, field="source.device")
        node = section.get("node")
        return cls(
            annotation=annotation,
            sources=(Path(path).parent / sources),
            device=PodField.parse(section["device"], path, "source.device"),
            node=None if node is None else PodField.parse(node, path, "source.node"),
        )


MAX_DEFAULT_PROCESSES = 4  # each holds its own fleet after a reload; a scheduler asks one pod at a time


def default_processes() -> int:
    """One worker process per CPU this process may run on (Python answers on one core per
    process), at most MAX_DEFAULT_PROCESSES; one where processes cannot be forked."""
    if not hasattr(os, "fork"):
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(cpus, MAX_DEFAULT_PROCESSES)


@dataclass(frozen=True)
class ServeConfig:
    """Everything ``fastmatch serve`` was told on its command line."""

    targets: str
    policy: Policy
    host: str = "127.0.0.1"
    port: int = 8080
    token: str | None = None
    k8s: K8sConfig = field(default_factory=K8sConfig)
    max_body: int = 10 * MiB  # any request but a fleet upload
    max_fleet_body: int = 1024 * MiB  # POST /v1/targets
    max_sources: int = 1000  # sources in one /v1/candidates request
    max_k: int = 1000
    body_timeout: float = 10.0  # a client that has not sent its whole body by then is answered 408
    threads: int = 8  # requests computed at once in each process (the kernel releases the GIL)
    processes: int = 1  # worker processes sharing the listening socket (the CLI defaults to the CPUs)
    max_connections: int = 256  # beyond it uvicorn answers 503
    drain_timeout: float = 30.0  # SIGTERM: in-flight requests get this long to finish
