"""The ``fastmatch`` command line: a thin layer over the public API.

Commands: ``match``, ``convert``, ``explain``, ``check``, ``reasons``, ``policy``, ``collect``,
``generate``, ``plan``, ``report``, ``serve`` and ``demo``. Exit codes: 0 success
(``check``: compatible), 1 ``check``: not compatible, 2 an error in the input
or the command line, 130 interrupted. A user error is one line on stderr,
``fastmatch: error: <message>``, never a traceback.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import signal
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, suppress
from functools import cached_property, partial
from itertools import chain
from operator import itemgetter
from types import FrameType
from importlib import resources
from typing import Any, Callable, Iterable, Iterator, Mapping, NoReturn, Sequence, TextIO

import msgspec
import numpy as np

from . import DeviceSet, FastmatchError, MatchResult, Policy, __version__, check, load, match
from .engine import validate_others
from .errors import printable, rebase
from .files import STDIN
from .formats import FORMATS, ROLES, read_libvirt_paths, read_path
from ._output import DistinctRows, ascii_texts, joined_lines
from .packed import Packed, packed
from .outfile import StagedOutput
from .reasons import reason_bits
from .scores import ScoreParts
from .summary import Summary, summarise
from .values import describe

PROG = "fastmatch"
EXIT_OK = 0
EXIT_INCOMPATIBLE = 1
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a reader that went away

DEMO_PACKAGE = "fastmatch"
DEMO_SOURCES = "data/demo_sources.jsonl"
DEMO_TARGETS = "data/demo_targets.jsonl"


# -- entry point ---------------------------------------------------------------------------
class _UsageError(Exception):
    """A command line argparse refuses; reported as one line like every other error."""


class _Terminated(BaseException):
    """SIGTERM, raised where the process is, so that the same clean-up as Ctrl-C's runs."""


# Set by the console entry point (fastmatch.__main__), where nothing follows main(): an
# interrupted run then ends at once, without the seconds Python can take to free a large fleet.
exit_at_once = False
# What a command would free object by object on returning, held until that exit instead
# (only when exit_at_once: two fleets of 1,000,000 devices took 0.2 s of CPU to free).
_freed_by_exit: list[Any] = []


def _keep_until_exit(*objects: Any) -> None:
    if exit_at_once:
        _freed_by_exit.extend(objects)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (the console script exits with it)."""
    _reserve_standard_descriptors()
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help and --version (0)
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    except _UsageError as exc:
        return _error(str(exc))
    previous = _on_sigterm(_terminate)
    try:
        with warnings.catch_warnings():
            # Shown as one line whatever filter the caller set (a test suite's "error" included).
            warnings.simplefilter("default")
            warnings.showwarning = _show_warning
            status: int = args.run(args)
            return status
    except FastmatchError as exc:
        return _error(str(exc))
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            return _broken_pipe()
        return _error(_os_error_message(exc))
    except MemoryError:
        return _error("out of memory")
    except KeyboardInterrupt:
        return _stopped("interrupted", EXIT_INTERRUPTED)
    except _Terminated:
        return _stopped("terminated", EXIT_TERMINATED)
    finally:
        _on_sigterm(previous)


def _say(text: str) -> None:
    """One line to stderr, if there is a stderr (``2>&-`` closes it: the exit status still tells)."""
    stream = sys.stderr
    if stream is None:
        return
    with suppress(OSError, ValueError):
        stream.write(text + "\n")
        stream.flush()


def _error(message: str) -> int:
    _say(f"{PROG}: error: {printable(message)}")
    return EXIT_ERROR


def _stopped(what: str, status: int) -> int:
    _say(f"{PROG}: {what}")
    if exit_at_once:
        # Still inside the except block: the traceback holds every frame's data, which
        # is never freed one object at a time.
        with suppress(OSError, ValueError, AttributeError):
            sys.stdout.flush()
        os._exit(status)
    return status


def _show_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, file: TextIO | None = None, line: str | None = None
) -> None:
    """A warning (such as the native kernel falling back to the reference) as one line."""
    text = " ".join(str(message).split("\n")).removeprefix(f"{PROG}: ")  # a warning may be worded over lines
    _say(f"{PROG}: warning: {printable(text)}")


def _os_error_message(exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    return f"{exc.filename}: {reason}" if exc.filename else reason


def _broken_pipe() -> int:
    # The reader of stdout went away (``fastmatch match ... | head``): stop quietly,
    # and keep Python from complaining again when it flushes stdout at exit.
    with suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return EXIT_BROKEN_PIPE


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise _Terminated()


# What signal.signal takes and gives back.
SignalHandler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


def _on_sigterm(handler: SignalHandler) -> SignalHandler:
    """Install a SIGTERM handler (only the main thread may); returns the one it replaces."""
    with suppress(ValueError, TypeError):  # not the main thread, or no handler to restore
        return signal.signal(signal.SIGTERM, handler)
    return None


def _reserve_standard_descriptors() -> None:
    """Put /dev/null on a closed stdin, stdout or stderr (``>&-``, ``2>&-``): otherwise the
    next file opened would take its number, and whatever writes there would write into it.
    ``sys.stdout`` and ``sys.stderr`` stay ``None``, so nothing meant for them goes there."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            with suppress(OSError):
                opened = os.open(os.devnull, os.O_RDWR)
                if opened != fd:
                    os.dup2(opened, fd)
                    os.close(opened)


def _stdout() -> TextIO:
    """Where results go without ``-o``; a closed stdout (``>&-``) is an error, not silence."""
    if sys.stdout is None:
        raise FastmatchError("standard output is closed; give -o FILE or open it")
    return sys.stdout


# -- the parser ----------------------------------------------------------------------------
def _positive(text: str) -> int:
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


# generate: far beyond the largest fleet benchmarked (1,000,000 per side); more would run
# for hours or ask for terabytes at once.
MAX_GENERATED = 100_000_000


def _generated(least: int) -> Callable[[str], int]:
    def count(text: str) -> int:
        value = _integer(text)
        if not least <= value <= MAX_GENERATED:
            raise argparse.ArgumentTypeError(f"expected an integer from {least} to {MAX_GENERATED:,}, got {text!r}")
        return value

    return count


def _workers(text: str) -> int:
    value = _integer(text)
    if value < 1 and value != -1:
        raise argparse.ArgumentTypeError(f"expected -1 (all cores) or an integer >= 1, got {text!r}")
    return value


def _integer(text: str) -> int:
    # ASCII digits only (int() also takes '²'-like digits, and refuses thousands of them).
    if not re.fullmatch(r"[+-]?[0-9]{1,30}", text.strip()):
        raise argparse.ArgumentTypeError(f"expected an integer, got {describe(text)}")
    return int(text)


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors raised (main reports them on one line) instead of
    printed as a usage block and exited on."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix(PROG).strip()
        raise _UsageError(f"{command + ': ' if command else ''}{message} (see {self.prog} --help)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Where can each VFIO mediated device (vGPU, vfio-ccw, vfio-ap) live-migrate?",
        epilog="Exit status: 0 success (check: compatible), 1 check: not compatible, 2 error.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def policy_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--policy", metavar="FILE", help="policy TOML file (default: the built-in policy)")

    def input_format_option(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--input-format", choices=FORMATS, metavar="FORMAT",
            help=f"read the inputs as {', '.join(FORMATS)} (default: told apart by content)",
        )

    def quiet_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bars (they show only on a terminal)")

    def skip_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--skip-invalid", action="store_true", help="leave out invalid records instead of stopping")
        p.add_argument("--rejects", metavar="FILE", help="with --skip-invalid: write each left-out record and why (JSON Lines)")

    p = commands.add_parser("match", help="rank the available targets of every source device")
    p.add_argument(
        "sources", metavar="SOURCES",
        help="source devices: fleet JSON Lines, JSON array, seed JSON, SELF/COMPATIBLE text, "
        "libvirt node-device XML (its mdevs), a sysfs tree (its mdevs) or a directory of such files",
    )
    p.add_argument("targets", metavar="TARGETS", help="target devices (same formats; libvirt and sysfs give their mdev types)")
    policy_option(p)
    input_format_option(p)
    skip_options(p)
    p.add_argument("--top", type=_positive, default=5, metavar="K", help="candidates per source (default: 5)")
    p.add_argument(
        "--format", choices=sorted([*_FORMATTERS, "parquet"]), default="table",
        help="output format (default: table; parquet: one row per candidate, needs -o or a pipe)",
    )
    p.add_argument(
        "--csv-formulas", action="store_true",
        help="CSV: write ids that begin with = + - @ (or a tab or CR) as they are; by default such a "
        "cell gets a leading ' so that a spreadsheet shows it as text instead of running it as a formula",
    )
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE (atomically) instead of stdout")
    p.add_argument("--workers", type=_workers, default=-1, metavar="N", help="threads for the kernel (-1: all cores)")
    p.add_argument(
        "--dask", metavar="ADDRESS",
        help="reduce on a Dask cluster: its scheduler (tcp://HOST:8786, or a scheduler JSON file), or 'local' to start "
        "one worker process per core on 127.0.0.1 (needs fastmatch[dask])",
    )
    p.add_argument(
        "--summary", action="store_true",
        help="print a summary to stderr: devices, classes, compatible pairs, stranded sources, reason counts",
    )
    p.add_argument("--summary-json", metavar="FILE", help="write that summary to FILE as JSON (atomically)")
    quiet_option(p)
    p.set_defaults(run=_cmd_match)

    p = commands.add_parser("convert", help="write any input as a Parquet fleet (one row per device)")
    p.add_argument("input", metavar="INPUT", help="devices in any input format (as match reads them)")
    p.add_argument("-o", "--output", metavar="FILE", required=True, help="the Parquet file to write (atomically)")
    p.add_argument("--role", choices=ROLES, help="of a libvirt or sysfs input: only its mdevs (source) or its mdev types (target)")
    policy_option(p)
    input_format_option(p)
    skip_options(p)
    p.set_defaults(run=_cmd_convert)

    p = commands.add_parser("explain", help="say why one source -> target pair is or is not compatible")
    p.add_argument("sources", metavar="SOURCES")
    p.add_argument("targets", metavar="TARGETS")
    p.add_argument("source_id", metavar="SOURCE_ID")
    p.add_argument("target_id", metavar="TARGET_ID")
    p.add_argument(
        "--format", choices=("text", "json"), default="text",
        help="json: one object (verdict, reasons, score parts, rank and its neighbours, the text)",
    )
    policy_option(p)
    input_format_option(p)
    p.set_defaults(run=_cmd_explain)

    p = commands.add_parser(
        "check",
        help="check one source device against one target device (exit 0 compatible, 1 not)",
    )
    p.add_argument("source", metavar="SOURCE_FILE", help="a file holding exactly one device")
    p.add_argument("target", metavar="TARGET_FILE", help="a file holding exactly one device")
    p.add_argument(
        "--format", choices=("text", "json"), default="text",
        help="json: one object (source, target, compatible, reasons, score parts, the text); the exit status is the same",
    )
    policy_option(p)
    input_format_option(p)
    p.set_defaults(run=_cmd_check)

    p = commands.add_parser("reasons", help="list the reason names and bits of a policy's reason masks")
    policy_option(p)
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format (default: table)")
    p.set_defaults(run=_cmd_reasons)

    p = commands.add_parser("policy", help="print a policy as TOML that --policy reads back")
    shown = p.add_mutually_exclusive_group(required=True)
    shown.add_argument("--default", action="store_true", help="the built-in policy")
    shown.add_argument("--policy", metavar="FILE", help="FILE's policy, every key the file leaves out at its default")
    p.set_defaults(run=_cmd_policy)

    p = commands.add_parser(
        "collect",
        help="read a host's devices from sysfs or libvirt XML and write fleet JSON Lines",
        description="Read a host's devices from sysfs or libvirt XML and write them as fleet JSON Lines. "
        "A source's id is its mdev UUID; a target's is <parent>/<type id>, the parent named as sysfs names it: "
        "a PCI parent by its address (0000:00:02.0, not libvirt's pci_0000_00_02_0), so both inputs give one "
        "device one id.",
    )
    inputs = p.add_mutually_exclusive_group(required=True)
    inputs.add_argument("--sysfs", metavar="ROOT", nargs="?", const="/sys", help="a sysfs tree (default: /sys)")
    inputs.add_argument("--libvirt-xml", metavar="PATH", nargs="+", help="virsh nodedev-dumpxml output: files or directories")
    p.add_argument("--host", metavar="NAME", default="", help="the host the devices are on (put into every record)")
    p.add_argument(
        "--role", choices=ROLES,
        help="only the sources (existing mdevs) or the targets (mdev types), to stdout or -o FILE; "
        "without it, -o DIR gets both: DIR/sources.jsonl and DIR/targets.jsonl",
    )
    p.add_argument(
        "-o", "--output", metavar="FILE|DIR",
        help="with --role: write to FILE (atomically) instead of stdout; without: the directory for the two files",
    )
    policy_option(p)
    skip_options(p)
    p.set_defaults(run=_cmd_collect)

    p = commands.add_parser("generate", help="write a synthetic fleet (DIR/sources.jsonl, DIR/targets.jsonl)")
    p.add_argument("--sources", type=_generated(0), required=True, metavar="N", help="source devices (at most 100,000,000)")
    p.add_argument("--targets", type=_generated(0), required=True, metavar="M", help="target devices (at most 100,000,000)")
    p.add_argument(
        "--distinct", type=_generated(1), metavar="K",
        help="at most K distinct descriptors per side (default: one per 100 devices of the larger side, at least 16)",
    )
    p.add_argument("--seed", type=_integer, default=0, metavar="S", help="the same seed gives the same files (default: 0)")
    p.add_argument(
        "--record-fraction", type=float, default=None, metavar="F",
        help="share of target descriptors with COMPATIBLE records (default: a third)",
    )
    p.add_argument(
        "--vm-devices", type=_vm_devices, default=None, metavar="LO-HI",
        help="group the sources into VMs of LO to HI devices on one host (default: one device a VM)",
    )
    p.add_argument("-o", "--output", metavar="DIR", required=True, help="directory to write the two files to")
    p.set_defaults(run=_cmd_generate)

    _add_plan_parser(commands, policy_option, input_format_option, quiet_option)

    p = commands.add_parser("serve", help="serve a prepared target fleet over HTTP (JSON API, Kubernetes scheduler extender)")
    p.add_argument("--targets", metavar="FILE", required=True, help="the target fleet (any input format); SIGHUP reads it again")
    policy_option(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=_port, default=8080, help="port to bind (default: 8080; 0: any free port)")
    tokens = p.add_mutually_exclusive_group()
    tokens.add_argument("--token", metavar="TOKEN", help="require 'Authorization: Bearer TOKEN' (visible in ps: prefer --token-file)")
    tokens.add_argument("--token-file", metavar="FILE", help="require the bearer token held in FILE")
    p.add_argument("--k8s-config", metavar="FILE", help="TOML: where a pod names its source device (default: annotation fastmatch.io/source)")
    p.add_argument("--max-body", type=_positive, default=10 << 20, metavar="BYTES", help="largest request body (default: 10 MiB)")
    p.add_argument("--max-fleet-body", type=_positive, default=1 << 30, metavar="BYTES", help="largest POST /v1/targets body (default: 1 GiB)")
    p.add_argument("--max-sources", type=_positive, default=1000, metavar="N", help="sources in one request (default: 1000)")
    p.add_argument(
        "--processes", type=_positive, default=None, metavar="N",
        help="worker processes serving from one port, each with its own copy of the fleet after a reload (default: one per CPU, at most 4)",
    )
    p.add_argument("--threads", type=_positive, default=8, metavar="N", help="requests computed at once in each process (default: 8)")
    p.add_argument("--body-timeout", type=_positive, default=10, metavar="SECONDS", help="a client must send its body within this (default: 10)")
    p.set_defaults(run=_cmd_serve)

    p = commands.add_parser(
        "report", help="write the fleet's migration picture: one self-contained HTML page, or its numbers as JSON"
    )
    p.add_argument("sources", metavar="SOURCES", help="source devices (any input format, as for match)")
    p.add_argument("targets", metavar="TARGETS", help="target devices")
    policy_option(p)
    input_format_option(p)
    skip_options(p)
    p.add_argument(
        "--format", choices=("html", "json"), default="html",
        help="html: one page with its styles, charts and the stranded list inside (default); json: the same numbers as data",
    )
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE (atomically) instead of stdout")
    p.add_argument("--workers", type=_workers, default=-1, metavar="N", help="threads for the kernel (-1: all cores)")
    _drain_options(p)  # with --drain: the joint plan's summary, waves and unplaced VMs, as `plan` makes it
    quiet_option(p)
    p.set_defaults(run=_cmd_report)

    p = commands.add_parser("demo", help="match the example fleet shipped with fastmatch and summarise")
    p.add_argument("--top", type=_positive, default=3, metavar="K", help="candidates shown per source (default: 3)")
    p.set_defaults(run=_cmd_demo)
    return parser


def _progress(args: argparse.Namespace) -> Callable[..., Any] | None:
    """A tqdm factory for progress bars on a terminal, or None (not a terminal, or --quiet)."""
    if args.quiet or sys.stderr is None or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return partial(tqdm, file=sys.stderr, leave=False, dynamic_ncols=True)


def _policy(path: str | None) -> Policy:
    return Policy.from_toml(path) if path is not None else Policy.default()


# -- reading inputs ------------------------------------------------------------------------
class _Rejects:
    """What ``--skip-invalid`` leaves out, each record with its reason: nothing is dropped silently."""

    def __init__(self, path: str | None) -> None:
        self.entries: list[dict[str, Any]] = []
        self.path = path

    def __call__(self, raw: Any, error: FastmatchError) -> None:
        self.entries.append({"reason": " ".join(str(error).split("\n")), "record": raw})

    def stage(self) -> StagedOutput | None:
        """The rejects file, written but not yet in place (``None``: they go to stderr)."""
        if self.path is None:
            return None
        staged = StagedOutput(self.path)
        staged.write(json.dumps(e, ensure_ascii=False, default=repr) + "\n" for e in self.entries)
        return staged

    def report(self) -> None:
        """Each reason on stderr (without a rejects file), then how many there were."""
        if self.path is None:
            for entry in self.entries:
                _say(f"{PROG}: rejected: {printable(entry['reason'])}")
        count = len(self.entries)
        where = f" (written to {printable(self.path)})" if self.path is not None else ""
        _say(f"{PROG}: {count} invalid record{'' if count == 1 else 's'} skipped{where}")


def _rejects(args: argparse.Namespace, outputs: list[str] | None = None) -> _Rejects | None:
    """``outputs``: the files the command writes (default: ``-o FILE``), which the rejects file may not be."""
    if args.rejects is not None and not args.skip_invalid:
        raise FastmatchError("--rejects FILE goes with --skip-invalid")
    for output in outputs if outputs is not None else [args.output] if args.output is not None else []:
        if args.rejects is not None and StagedOutput(args.rejects).same_file_as(StagedOutput(output)):
            raise FastmatchError(f"--rejects and -o name one file ({output}); give them different paths")
    return _Rejects(args.rejects) if args.skip_invalid else None


def _read_devices(
    path: str,
    policy: Policy,
    input_format: str | None,
    role: str | None,
    rejects: _Rejects | None = None,
    progress: Callable[..., Any] | None = None,
) -> DeviceSet:
    """One input of a command; ``role`` keeps the sources or the targets of a libvirt or sysfs input."""
    return load(path, policy, input_format=input_format, role=role, on_error=rejects, progress=progress)


def _read_fleets(
    args: argparse.Namespace, policy: Policy, rejects: _Rejects | None = None, progress: Callable[..., Any] | None = None
) -> tuple[DeviceSet, DeviceSet]:
    """``args.sources`` and ``args.targets``, read side by side: the targets in a thread of
    their own, the sources here. Reading releases the GIL for much of its work (pyarrow's
    decoding, the native line and text passes), so two fleets take less than one after the
    other (BENCHMARKS.md, session 8). An error in the sources is the one reported, as when
    they are read first, and at once: an error, Ctrl-C or SIGTERM there does not wait for the
    targets' reading (the command then ends its process, thread and all).

    In turn, as before, when what reading reports must keep its order: rejected records
    (the sources' first), progress bars, or standard input.

    Each fleet's hosts are coded where it is read (``DeviceSet.host_codes``, native and
    without the GIL): every match reads them, and each fleet's then costs nothing beside the
    other's reading."""
    reading = partial(_read_devices, policy=policy, input_format=args.input_format, rejects=rejects, progress=progress)

    def read(path: str, role: str) -> DeviceSet:
        devices = reading(path, role=role)
        devices.host_codes  # noqa: B018  (a cached property, made here)
        return devices

    if rejects is not None or progress is not None or STDIN in (args.sources, args.targets):
        return read(args.sources, role="source"), read(args.targets, role="target")
    reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fastmatch-targets")
    try:
        targets = reader.submit(read, args.targets, role="target")
        return read(args.sources, role="source"), targets.result()
    finally:
        reader.shutdown(wait=False)


def _check_inputs(*paths: str) -> None:
    """Standard input can be read once: it may be one of the inputs, not two."""
    if sum(path == STDIN for path in paths) > 1:
        raise FastmatchError("'-' (standard input) is given as two inputs; it can be read once")


def _write_results(
    path: str | None, chunks: Iterable[str] | Iterable[bytes], rejects: _Rejects | None, binary: bool = False
) -> None:
    """The output (a file or stdout), then the rejects: all written, or none in place.

    The rejects become visible only once the output is complete, so a run that
    fails leaves no rejects behind that would look like its result. ``binary`` chunks are
    bytes (UTF-8 text, or a Parquet file), written as they are.
    """
    output = StagedOutput(path, binary=binary) if path is not None and path != STDIN else None
    staged_rejects = None
    try:
        if output is None:
            stream = _stdout()
            if binary:
                stream.flush()  # what the text layer holds goes first
                raw = getattr(stream, "buffer", None)  # a text stream without one (io.StringIO) takes text
                write = raw.write if raw is not None else lambda chunk: stream.write(chunk.decode())
                for chunk in chunks:
                    write(chunk)
                (raw or stream).flush()
            else:
                for chunk in chunks:
                    stream.write(chunk if isinstance(chunk, str) else chunk.decode())  # (text: str chunks)
                stream.flush()
        else:
            output.write(chunks)
        staged_rejects = rejects.stage() if rejects is not None else None
        if output is not None:
            output.commit()
        if staged_rejects is not None:
            staged_rejects.commit()
    except BaseException:
        for staged in (output, staged_rejects):
            if staged is not None:
                staged.discard()
        raise
    if rejects is not None:
        rejects.report()


# -- match ---------------------------------------------------------------------------------
def _cmd_match(args: argparse.Namespace) -> int:
    _check_inputs(args.sources, args.targets, args.policy)
    _check_summary_file(args)
    policy = _policy(args.policy)
    rejects = _rejects(args)
    progress = _progress(args)
    sources, targets = _read_fleets(args, policy, rejects, progress)
    # More candidates than targets cannot be found; asking for them must not cost n x k.
    top = min(args.top, len(targets))
    wants_summary = args.summary or args.summary_json is not None
    if args.dask is not None:
        ranking, summary = _on_dask(args.dask, sources, targets, policy, top, wants_summary)
    else:
        result = match(sources, targets, policy, workers=args.workers, progress=progress)
        ranking = Ranking.of(result, top)
        summary = summarise(result) if wants_summary else None
    chunks: Iterable[str] | Iterable[bytes]
    if args.format == "parquet":
        _refuse_binary_terminal(args.output)
        chunks = [_parquet_candidates(ranking)]
    else:
        formatter = _FORMATTERS[args.format]
        if args.format == "csv":
            formatter = partial(formatter, neutralise=not args.csv_formulas)
        chunks = formatter(ranking)
    # The summary file is written first and put in place with the results: both, or neither.
    staged_summary = _stage_summary(summary, args.summary_json)
    try:
        _write_results(args.output, chunks, rejects, binary=args.format != "table")
        if staged_summary is not None:
            staged_summary.commit()
    except BaseException:
        if staged_summary is not None:
            staged_summary.discard()
        raise
    if args.summary and summary is not None:
        for line in summary.text().splitlines():
            _say(f"{PROG}: summary: {line}")
    _keep_until_exit(sources, targets, ranking)
    return EXIT_OK


def _check_summary_file(args: argparse.Namespace) -> None:
    path = args.summary_json
    if path is None:
        return
    if path == STDIN:
        raise FastmatchError("--summary-json needs a file name ('-' would mix it into the results); use --summary for stderr")
    for option, other in (("-o", args.output), ("--rejects", args.rejects)):
        if other is not None and other != STDIN and StagedOutput(path).same_file_as(StagedOutput(other)):
            raise FastmatchError(f"--summary-json and {option} name one file ({path}); give them different paths")


def _stage_summary(summary: Summary | None, path: str | None) -> StagedOutput | None:
    """``--summary-json FILE`` written, not yet in place (``None``: not asked for)."""
    if summary is None or path is None:
        return None
    staged = StagedOutput(path)
    try:
        staged.write([json.dumps(summary.json(), ensure_ascii=False, indent=2) + "\n"])
    except BaseException:
        staged.discard()
        raise
    return staged


class Ranking:
    """``match``'s answer as written: the distinct rankings the sources share (most share
    theirs with others: the devices of one class, wherever their host does not matter), each
    with its candidates' score parts (fastmatch.scores), formatted once; ``which[i]`` is
    source ``i``'s ranking, ``first[r]`` a source holding ranking ``r``, and ``targets[r]``
    its candidates (target indices, -1 past the last)."""

    def __init__(
        self,
        source_ids: Sequence[str],
        target_ids: Sequence[str],
        targets: np.ndarray,
        first: np.ndarray,
        which: np.ndarray,
        parts: ScoreParts,
    ):
        """``targets`` and ``parts`` (rankings, k): each distinct ranking's candidates, and their score parts."""
        self.source_ids, self.target_ids = source_ids, target_ids
        self.targets = targets
        self.first, self.which = first, which
        self.parts = parts

    @classmethod
    def of(cls, result: MatchResult, k: int) -> "Ranking":
        # Equal candidates with equal scores have equal parts when the sources' versions agree:
        # sources share a ranking when all three are equal, found in native code a run of
        # sources at a time, as the kernel ranks them (no (n, k) array of the whole fleet).
        origins = np.ascontiguousarray(result.version_origins(), dtype=np.int64)
        which = np.empty(len(result.sources), dtype=np.int64)
        rankings = DistinctRows(k)
        for sources, indices, scores in result.top_k_runs(k):
            rankings.add(indices, scores, origins[sources], sources, which)
        first, targets, scores, _ = rankings.rows()
        parts = result.score_parts(first[:, None], targets, scores)
        return cls(result.sources.ids, result.targets.ids, targets, first, which, parts)

    def __len__(self) -> int:
        """How many distinct rankings."""
        return len(self.first)

    def candidates(self, r: int) -> Iterator[tuple[int, int]]:
        """``(rank, target)`` of ranking ``r``'s candidates (rank from 1)."""
        return ((rank, j) for rank, j in enumerate(self._targets[r], 1) if j >= 0)  # (padding: on the right)

    def score_json(self, r: int, rank: int) -> dict[str, Any] | None:
        """``ScoreParts.json`` of ranking ``r``'s candidate ``rank`` (from 1)."""
        return self._score_json[r * self.k + rank - 1]

    @property
    def k(self) -> int:
        """Candidates a ranking holds at most."""
        k: int = self.targets.shape[1]
        return k

    @cached_property
    def _targets(self) -> list[list[int]]:
        targets: list[list[int]] = self.targets.tolist()
        return targets

    @cached_property
    def _score_json(self) -> list[dict[str, Any] | None]:
        return self.parts.json_list()

    def formatted(self, format_ranking: Callable[[int], Any]) -> list[Any]:
        """``format_ranking(r)`` of each distinct ranking, in ranking order."""
        return [format_ranking(r) for r in range(len(self.first))]

    def lines(self, prefix: bytes, ids: Packed, pieces: list[list[bytes]]) -> Iterator[bytes]:
        """The sources' lines in chunks of about ``_CHUNK_BYTES``: for each piece of a source's
        ranking (``pieces[r]``, encoded), ``prefix``, the source's encoded id, the piece.

        ``ids`` are the sources' encoded ids, packed (fastmatch.packed). The lines are joined
        in native code (fastmatch._output): nothing runs per source in Python."""
        data, ends = ids
        joined_pieces, piece_ends = packed(chain.from_iterable(pieces))
        ranking_pieces = np.zeros(len(pieces) + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, pieces), np.int64, len(pieces)), out=ranking_pieces[1:])
        which = np.ascontiguousarray(self.which, dtype=np.int64)
        start = 0
        while start < len(which):
            chunk, start = joined_lines(prefix, data, ends, which, joined_pieces, piece_ends, ranking_pieces, start, _CHUNK_BYTES)
            yield chunk


# Lines are written in chunks of about this many bytes: large enough that the per-chunk
# Python costs nothing, small enough to stay in cache between being joined and written.
_CHUNK_BYTES = 1 << 22

# What JSON escapes in a string (msgspec as the standard: the control characters, the quote
# and the backslash); ids without any are written as they are, between quotes.
_JSON_ESCAPED = bytes(range(0x20)) + b'"\\'


def _json_string_bodies(texts: list[str]) -> Packed:
    """Each text as a JSON string without its quotes, in UTF-8: plain ASCII ids (the usual
    fleet) copied as they are at C speed, any other id encoded by msgspec."""
    plain = ascii_texts(texts, _JSON_ESCAPED)
    return plain if plain is not None else packed(encoded[1:-1] for encoded in map(msgspec.json.encode, texts))


def _format_json(ranking: Ranking) -> Iterator[bytes]:
    """JSON Lines: one object per source,
    ``{"source": ID, "candidates": [{"target": ID, "rank": 1, "score": {parts}}, ...]}``.

    Each distinct ranking is formatted once; a source's line is then a prefix, its id and
    its ranking's suffix, joined in native code (``Ranking.lines``)."""
    encode = msgspec.json.encode
    target_ids = ranking.target_ids

    def candidates(r: int) -> str:
        return ", ".join(
            f'{{"target": {encode(target_ids[j]).decode()}, "rank": {rank}, "score": {encode(ranking.score_json(r, rank)).decode()}}}'
            for rank, j in ranking.candidates(r)
        )

    suffixes = [[f'", "candidates": [{text}]}}\n'.encode()] for text in ranking.formatted(candidates)]
    yield from ranking.lines(b'{"source": "', _json_string_bodies(list(ranking.source_ids)), suffixes)


# A spreadsheet runs a cell that begins with one of these as a formula (OWASP, "CSV Injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

# A CSV cell holding one of these is quoted.
_CSV_QUOTED = (",", '"', "\r", "\n")

CSV_COLUMNS = ["source", "rank", "target", "exact", "same_type", "version", "major_distance", "minor_distance"]


def _csv_cell(text: str) -> str:
    """An id as a CSV cell a spreadsheet shows as text: one that would start a formula gets a
    leading ``'`` (OWASP's advice), which spreadsheets take as "text follows" and do not show.
    ``--csv-formulas`` turns this off."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def _format_csv(ranking: Ranking, neutralise: bool = True) -> Iterator[bytes]:
    """``CSV_COLUMNS``, one row per candidate (rank from 1; the score's parts, empty where
    they do not apply).

    Rows end with ``\n``; a cell holding a comma, a quote, ``\n`` or a lone ``\r`` is
    quoted (the csv module would leave a lone ``\r`` bare, and readers split the row there).
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # "\r\n": a cell holding either is quoted
    cell = _csv_cell if neutralise else str

    def cells(values: list[Any]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(values)
        return buffer.getvalue()[:-2] + "\n"

    def parts_cells(r: int, rank: int) -> list[Any]:
        parts = ranking.score_json(r, rank) or {}
        return ["" if parts.get(name) is None else str(parts[name]).lower() if isinstance(parts[name], bool) else cell(str(parts[name]))
                for name in CSV_COLUMNS[3:]]

    yield cells(CSV_COLUMNS).encode()
    # Each distinct ranking's rows after the source cell (from the comma that ends it); a
    # source's cell goes before each row of its ranking, joined in native code.
    rankings = ranking.formatted(
        lambda r: ["," + cells([rank, cell(ranking.target_ids[j]), *parts_cells(r, rank)]) for rank, j in ranking.candidates(r)]
    )
    rows = [[row.encode() for row in rows] for rows in rankings]
    source_cells = _csv_source_cells(list(ranking.source_ids), lambda text: cells([cell(text)])[:-1], neutralise)
    yield from ranking.lines(b"", source_cells, rows)


def _csv_source_cells(source_ids: list[str], quoted: Callable[[str], str], neutralise: bool) -> Packed:
    """Each source id as its CSV cell, in UTF-8, packed (fastmatch.packed).
    Plain ASCII ids that need nothing done (no comma, quote, CR or LF to quote; no formula
    start to neutralise) are copied at C speed; only otherwise is each id looked at, and
    those that need it go through ``quoted`` (the csv writer)."""
    plain = ascii_texts(source_ids, "".join(_CSV_QUOTED).encode())
    if plain is not None and not (neutralise and not set(map(itemgetter(0), filter(None, source_ids))).isdisjoint(_FORMULA_START)):
        return plain
    return packed(
        (quoted(text) if any(c in text for c in _CSV_QUOTED) or (neutralise and text.startswith(_FORMULA_START)) else text).encode()
        for text in source_ids
    )


def _format_table(ranking: Ranking) -> Iterator[str]:
    """Aligned columns, streamed: the widths come from the ids, not from rows held in memory.
    A source with no available target gets one row that says so. Ids are shown with their
    control characters escaped: one row per line, whatever they hold."""
    source_ids, target_ids = ranking.source_ids, ranking.target_ids
    shown_targets = np.unique(ranking.targets[ranking.targets >= 0]).tolist()
    header = ("SOURCE", "RANK", "TARGET", "SCORE")
    no_target = "(no available target)"
    shown_sources = list(map(printable, source_ids))
    source_width = max(len(header[0]), *map(len, shown_sources), 0)
    rank_width = max(len(header[1]), len(str(ranking.k)))
    target_width = max(len(header[2]), len(no_target), *(len(printable(target_ids[j])) for j in shown_targets))

    def rest(rank: str, target: str, score: str) -> str:
        """A row after its source column: formatted once per distinct ranking."""
        return f"  {rank:>{rank_width}}  {target:<{target_width}}  {score}".rstrip() + "\n"

    rankings = ranking.formatted(
        lambda r: [rest(str(rank), printable(target_ids[j]), ranking.parts.words((r, rank - 1))) for rank, j in ranking.candidates(r)]
        or [rest("-", no_target, "-")]
    )
    yield f"{header[0]:<{source_width}}" + rest(*header[1:])
    which = ranking.which
    for start in range(0, len(source_ids), 8192):
        yield "".join(
            prefix + row
            for i in range(start, min(len(source_ids), start + 8192))
            for prefix in (shown_sources[i].ljust(source_width),)
            for row in rankings[which[i]]
        )


_FORMATTERS: dict[str, Callable[..., Iterator[str] | Iterator[bytes]]] = {  # json, csv: UTF-8 bytes
    "table": _format_table,
    "json": _format_json,
    "csv": _format_csv,
}


def _on_dask(
    address: str, sources: DeviceSet, targets: DeviceSet, policy: Policy, k: int, wants_summary: bool
) -> tuple[Ranking, Summary | None]:
    """The ranking (and the summary, when asked for) reduced on a Dask cluster
    (fastmatch.distributed), which is left as it was found (a ``local`` one is stopped)."""
    from . import distributed

    with distributed.connected(address) as client:
        result = distributed.match(sources, targets, policy, client)
        return Ranking.of(result, k), summarise(result) if wants_summary else None


def _write_parquet(path: str | None, data: bytes, rejects: _Rejects | None) -> None:
    """A Parquet file to ``path``, or to standard output unless that is a terminal."""
    _refuse_binary_terminal(path)
    _write_results(path, [data], rejects, binary=True)


def _refuse_binary_terminal(path: str | None) -> None:
    if (path is None or path == STDIN) and (_stdout().isatty() or not hasattr(_stdout(), "buffer")):
        raise FastmatchError("Parquet output is binary: give -o FILE, or pipe it")


def _parquet_candidates(ranking: Ranking) -> bytes:
    """The rows ``--format csv`` writes, as a Parquet table (fastmatch.formats.columnar)."""
    from .formats.columnar import candidates_parquet

    return candidates_parquet(ranking.source_ids, ranking.target_ids, ranking.targets, ranking.parts, ranking.which)


# -- convert -------------------------------------------------------------------------------
def _cmd_convert(args: argparse.Namespace) -> int:
    from .formats.columnar import fleet_table, parquet_bytes

    _check_inputs(args.input, args.policy)
    policy = _policy(args.policy)
    rejects = _rejects(args)
    devices = _read_devices(args.input, policy, args.input_format, args.role, rejects)
    _write_parquet(args.output, parquet_bytes(fleet_table(devices)), rejects)
    return EXIT_OK


# -- explain -------------------------------------------------------------------------------
def _cmd_explain(args: argparse.Namespace) -> int:
    _check_inputs(args.sources, args.targets, args.policy)
    policy = _policy(args.policy)
    sources, targets = _read_fleets(args, policy)
    i = _index_of(sources, args.source_id, args.sources)
    j = _index_of(targets, args.target_id, args.targets)
    # The one source against all targets: cheap, and the score is the one `match`
    # reports (with prefer = "newest" it depends on every target's version).
    one_source = DeviceSet.from_records([sources.to_records()[i]], policy)
    result = match(one_source, targets, policy)
    explanation = result.explanation(0, j)
    explanation["source"] = sources.ids[i]
    _stdout().write(json.dumps(explanation) + "\n" if args.format == "json" else explanation["text"] + "\n")
    return EXIT_OK


def _index_of(devices: DeviceSet, device_id: str, path: str) -> int:
    for index, candidate in enumerate(devices.ids):
        if candidate == device_id:
            return index
    raise FastmatchError(f"no device with id {device_id!r}", file=path)


# -- check ---------------------------------------------------------------------------------
def _cmd_check(args: argparse.Namespace) -> int:
    _check_inputs(args.source, args.target, args.policy)
    policy = _policy(args.policy)
    source = _single_record(args.source, policy, args.input_format, "source")
    target = _single_record(args.target, policy, args.input_format, "target")
    verdict = check(source, target, policy)
    if args.format == "json":
        shown = {
            "source": source["id"],
            "target": target["id"],
            "compatible": verdict.compatible,
            "reasons": list(verdict.reasons),
            "score": verdict.parts,
            "text": verdict.explanation,
        }
        _stdout().write(json.dumps(shown, ensure_ascii=False) + "\n")
    else:
        _stdout().write(verdict.explanation + "\n")
    return EXIT_OK if verdict.compatible else EXIT_INCOMPATIBLE


def _single_record(path: str, policy: Policy, input_format: str | None, role: str) -> dict[str, Any]:
    devices = _read_devices(path, policy, input_format, role)
    if len(devices) != 1:
        raise FastmatchError(f"expected exactly one device, found {len(devices)}", file=path)
    return devices.to_records()[0]


# -- reasons and policy --------------------------------------------------------------------
def _cmd_reasons(args: argparse.Namespace) -> int:
    entries = reason_bits(_policy(args.policy))
    if args.format == "json":
        _stdout().write(json.dumps(entries, indent=2, ensure_ascii=False) + "\n")
        return EXIT_OK
    rows = [
        (str(e["bit"]) if "last_bit" not in e else f"{e['bit']}-{e['last_bit']}", printable(e["name"]), e["meaning"])
        for e in entries
    ]
    header = ("BIT", "NAME", "SET WHEN")
    widths = [max(len(row[c]) for row in (header, *rows)) for c in range(2)]
    _stdout().write("".join(f"{r[0]:>{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]}\n" for r in (header, *rows)))
    return EXIT_OK


def _cmd_policy(args: argparse.Namespace) -> int:
    _stdout().write(_policy(args.policy).to_toml())
    return EXIT_OK


# -- collect -------------------------------------------------------------------------------
COLLECTED_FILES = {"source": "sources.jsonl", "target": "targets.jsonl"}


def _cmd_collect(args: argparse.Namespace) -> int:
    if args.role is None and (args.output is None or args.output == STDIN):
        raise FastmatchError(
            "collect without --role writes two files, DIR/sources.jsonl and DIR/targets.jsonl: give -o DIR "
            "(or --role source|target for one side on stdout or -o FILE)"
        )
    outputs = {args.role: args.output} if args.role else {
        role: os.path.join(args.output, name) for role, name in COLLECTED_FILES.items()
    }
    rejects = _rejects(args, outputs=[path for path in outputs.values() if path is not None])
    policy = _policy(args.policy)
    others: list[tuple[Any, Any]] = []  # the other role's records: validated, written only without --role
    role = args.role or "source"
    if args.sysfs is not None:
        records, where = read_path(args.sysfs, "sysfs", role=role, host=args.host, on_error=rejects, others=others)
        places: Sequence[int | str | None] | None = [rebase(place, args.sysfs) for place in where or []]  # each record's directory, and its values' files
        others = [(record, rebase(place, args.sysfs)) for record, place in others]
    else:
        records, places = read_libvirt_paths(args.libvirt_xml, role=role, host=args.host, on_error=rejects, others=others)
    # Validated as match will read them back, so what is written is what match accepts.
    devices = DeviceSet.from_records(records, policy, lines=places, on_error=rejects)
    if args.role is not None:
        validate_others(others, policy, None, rejects)
        _write_results(args.output, _json_lines(devices), rejects)
        return EXIT_OK
    other_records, other_places = zip(*others) if others else ((), ())
    targets = DeviceSet.from_records(other_records, policy, lines=other_places, on_error=rejects)
    _write_directory(args.output, {outputs["source"]: devices, outputs["target"]: targets}, rejects)
    return EXIT_OK


def _json_lines(devices: DeviceSet) -> Iterator[str]:
    return (json.dumps(record, ensure_ascii=False) + "\n" for record in devices.to_records())


def _write_directory(directory: str, files: dict[str, DeviceSet], rejects: _Rejects | None) -> None:
    """Each file of ``files`` (a path in ``directory``) as fleet JSON Lines, then the rejects:
    all in place, or none (as :func:`_write_results` for one file)."""
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise FastmatchError(f"-o {directory}: is not a directory (collect without --role writes two files into one)")
    os.makedirs(directory, exist_ok=True)
    staged: list[StagedOutput] = []
    try:
        for path, devices in files.items():
            output = StagedOutput(path)
            staged.append(output)
            output.write(_json_lines(devices))
        staged_rejects = rejects.stage() if rejects is not None else None
        if staged_rejects is not None:
            staged.append(staged_rejects)
        for output in staged:
            output.commit()
    except BaseException:
        for output in staged:
            output.discard()
        raise
    if rejects is not None:
        rejects.report()


# -- generate ------------------------------------------------------------------------------
def _cmd_generate(args: argparse.Namespace) -> int:
    from .generate import DEFAULT_RECORD_FRACTION, default_distinct, write_fleet

    fraction = DEFAULT_RECORD_FRACTION["targets"] if args.record_fraction is None else args.record_fraction
    distinct = default_distinct(args.sources, args.targets) if args.distinct is None else args.distinct
    paths = write_fleet(
        args.output, args.sources, args.targets, distinct, args.seed, record_fraction=fraction, vm_devices=args.vm_devices
    )
    _stdout().write("".join(f"{printable(str(path))}\n" for path in paths))
    return EXIT_OK


def _vm_devices(text: str) -> tuple[int, int]:
    """``N`` or ``LO-HI``: devices per generated VM."""
    found = re.fullmatch(r"\s*([0-9]{1,3})\s*(?:-\s*([0-9]{1,3})\s*)?", text)
    low, high = (int(found.group(1)), int(found.group(2) or found.group(1))) if found else (0, 0)
    if not 1 <= low <= high <= 16:
        raise argparse.ArgumentTypeError(f"expected N or LO-HI with 1 <= LO <= HI <= 16, got {describe(text)}")
    return low, high


# -- plan ----------------------------------------------------------------------------------
# Spelled here, not imported from fastmatch.drain, so that starting the command line does not
# load the planner (fastmatch.drain checks the same names).
PLAN_STRATEGIES = ("joint", "greedy")
PLAN_FORMATS = ("csv", "json", "table")


def _drain_options(p: argparse.ArgumentParser) -> None:
    """The drained hosts, their side files and the limits of a wave, as ``plan`` and ``report --drain`` read them."""
    p.add_argument("--drain", nargs="+", default=[], metavar="HOST", help="hosts to empty")
    p.add_argument("--drain-file", metavar="FILE", help="hosts to empty, one a line (# comments)")
    p.add_argument("--host-limits", metavar="FILE", help="TOML or JSON: host = most new devices it may take")
    p.add_argument("--max-parallel", type=_positive, metavar="N", help="VM migrations at a time, cluster-wide")
    p.add_argument("--max-per-host", type=_positive, metavar="N", help="VM migrations at a time out of, and into, each host")


def _drain_inputs(args: argparse.Namespace) -> tuple[list[str], dict[str, int] | None, dict[str, Any]]:
    """``(drain, host_limits, names)`` from ``_drain_options``' arguments, for :func:`fastmatch.plan`."""
    from .drain.inputs import read_drain_file, read_host_limits

    drain, names = list(args.drain), {"sources": args.sources, "drain": "--drain"}
    if args.drain_file is not None:
        names["drain"], listed = read_drain_file(args.drain_file)
        if args.drain:
            raise FastmatchError("give the drained hosts with --drain or with --drain-file, not both")
        drain = [host for host, _ in listed]
        names["drain_lines"] = [line for _, line in listed]
    limits = None
    if args.host_limits is not None:
        names["host_limits"], limits = read_host_limits(args.host_limits)
    return drain, limits, names


def _add_plan_parser(
    commands: Any,
    policy_option: Callable[[argparse.ArgumentParser], None],
    input_format_option: Callable[[argparse.ArgumentParser], None],
    quiet_option: Callable[[argparse.ArgumentParser], None],
) -> None:
    p = commands.add_parser(
        "plan", help="plan the evacuation of drained hosts: every VM moved whole, within capacity, or listed with why"
    )
    p.add_argument("sources", metavar="SOURCES", help="source devices (any input format match reads)")
    p.add_argument("targets", metavar="TARGETS", help="target devices")
    _drain_options(p)
    p.add_argument(
        "--strategy", choices=PLAN_STRATEGIES, default="joint",
        help="joint: the proven optimum (HiGHS); greedy: VMs in input order, each to its best available target",
    )
    p.add_argument("--assume", metavar="FILE", help="TOML or JSON patches applied to the fleets first (what-if)")
    p.add_argument("--time-limit", type=_seconds, metavar="SECONDS", help="return the best plan found by then (not proven optimal)")
    policy_option(p)
    input_format_option(p)
    p.add_argument("--format", choices=PLAN_FORMATS, default="table", help="output format (default: table)")
    p.add_argument(
        "--csv-formulas", action="store_true",
        help="CSV: write cells that begin with = + - @ as they are (by default they get a leading ')",
    )
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE (atomically) instead of stdout")
    p.add_argument("--workers", type=_workers, default=-1, metavar="N", help="threads for the kernel (-1: all cores)")
    quiet_option(p)
    p.set_defaults(run=_cmd_plan)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {describe(text)}")
    return value


def _cmd_plan(args: argparse.Namespace) -> int:
    from .drain import plan
    from .drain.assume import read_assumptions
    from .drain.output import FORMATTERS as PLAN_FORMATTERS, summary_text

    _check_inputs(args.sources, args.targets, *(f for f in (args.policy, args.drain_file, args.host_limits, args.assume) if f))
    drain, limits, names = _drain_inputs(args)
    if not drain:
        raise FastmatchError("no host to drain: give --drain HOST ... or --drain-file FILE")
    assume = None
    if args.assume is not None:
        names["assume"], assume = read_assumptions(args.assume)
    policy = _policy(args.policy)
    sources, targets = _read_fleets(args, policy)
    result = plan(
        sources, targets, drain, policy, strategy=args.strategy, host_limits=limits, assume=assume,
        max_parallel=args.max_parallel, max_per_host=args.max_per_host, time_limit=args.time_limit,
        workers=args.workers, names=names,
    )
    cell = _csv_cell if args.format == "csv" and not args.csv_formulas else str
    _write_results(args.output, PLAN_FORMATTERS[args.format](result, cell), None)
    if args.format == "csv" and not args.quiet:
        _say(f"{PROG}: {' '.join(summary_text(result).splitlines()[0].split())}")
    return EXIT_OK


# -- serve ---------------------------------------------------------------------------------
def _port(text: str) -> int:
    value = _integer(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {text!r}")
    return value


def _cmd_serve(args: argparse.Namespace) -> int:
    try:
        from .serve.config import K8sConfig, ServeConfig, default_processes
        from .serve.server import serve
    except ImportError as exc:
        raise FastmatchError(f"serve needs {exc.name}: pip install 'fastmatch[serve]'") from None
    if args.targets == STDIN:
        raise FastmatchError("serve: --targets must name a file, which SIGHUP reads again (not '-')")
    token = args.token
    if args.token_file is not None:
        token = _read_token(args.token_file)
    if token is not None and not token:
        raise FastmatchError("the bearer token is empty", file=args.token_file)
    k8s = K8sConfig.from_toml(args.k8s_config) if args.k8s_config else K8sConfig()
    config = ServeConfig(
        targets=args.targets, policy=_policy(args.policy), host=args.host, port=args.port, token=token, k8s=k8s,
        max_body=args.max_body, max_fleet_body=args.max_fleet_body, max_sources=args.max_sources, threads=args.threads,
        processes=args.processes or default_processes(), body_timeout=args.body_timeout,
    )
    serve(config)
    return EXIT_OK


def _read_token(path: str) -> str:
    from .files import read_input

    try:
        return read_input(path, limit=4096).decode("utf-8").strip()
    except UnicodeDecodeError:
        raise FastmatchError("the token file is not UTF-8", file=path) from None



# -- report --------------------------------------------------------------------------------
def _cmd_report(args: argparse.Namespace) -> int:
    from .report import input_facts, render_html, report_figures

    _check_inputs(args.sources, args.targets, *(f for f in (args.policy, args.drain_file, args.host_limits) if f))
    drain, limits, names = _drain_inputs(args)
    if not drain and any(v is not None for v in (args.drain_file, limits, args.max_parallel, args.max_per_host)):
        raise FastmatchError("no host to drain: the drain options need --drain HOST ... or --drain-file FILE with hosts")
    policy = _policy(args.policy)
    rejects = _rejects(args)
    progress = _progress(args)
    sources, targets = _read_fleets(args, policy, rejects, progress)
    result = match(sources, targets, policy, workers=args.workers, progress=progress)
    inputs = {
        "sources": input_facts(args.sources),
        "targets": input_facts(args.targets),
        "policy": input_facts(args.policy, default="built-in"),
    }
    drain_plan = None
    if drain:
        from .drain import plan

        drain_plan = plan(
            sources, targets, drain, policy, host_limits=limits, max_parallel=args.max_parallel,
            max_per_host=args.max_per_host, workers=args.workers, names=names,
        )
        for role, path in (("drain", args.drain_file), ("host_limits", args.host_limits)):
            if path is not None:
                inputs[role] = input_facts(path)
    figures = report_figures(result, inputs, drain=drain_plan)
    page = json.dumps(figures, ensure_ascii=False) + "\n" if args.format == "json" else render_html(figures)
    _write_results(args.output, [page], rejects)
    return EXIT_OK


# -- demo ----------------------------------------------------------------------------------
def _cmd_demo(args: argparse.Namespace) -> int:
    data = resources.files(DEMO_PACKAGE)
    with ExitStack() as stack:
        source_path = stack.enter_context(resources.as_file(data.joinpath(DEMO_SOURCES)))
        target_path = stack.enter_context(resources.as_file(data.joinpath(DEMO_TARGETS)))
        policy = Policy.default()
        sources = load(source_path, policy)
        targets = load(target_path, policy)
        result = match(sources, targets, policy)
        print_demo(result, args.top, _stdout())
    return EXIT_OK


def print_demo(result: MatchResult, k: int, out: TextIO) -> None:
    """The demo summary: sizes, compatible pairs, stranded sources, candidates, reasons."""
    sources, targets = result.sources, result.targets
    source_records, target_records = sources.to_records(), targets.to_records()
    ranking = Ranking.of(result, min(k, len(targets)))  # no n x k for a k beyond the targets
    indices = ranking.targets[ranking.which]
    compatible = result.compatible
    n, m = result.shape
    n_compatible = int(compatible.sum())
    unavailable = int(compatible[:, targets.capacities == 0].sum())
    stranded = [i for i in range(n) if indices[i, 0] < 0] if k > 0 else []

    def line(text: str = "") -> None:
        out.write(text + "\n")

    def hosts(devices: DeviceSet) -> int:
        return len({h for h in devices.hosts if h})

    line("fastmatch demo: the example fleet shipped with fastmatch (built-in policy)")
    line()
    line(f"  sources  {n:4d} devices on {hosts(sources)} hosts, {len(sources.descriptors)} distinct descriptors")
    line(f"  targets  {m:4d} devices on {hosts(targets)} hosts, {len(targets.descriptors)} distinct descriptors")
    share = f" ({100 * n_compatible / (n * m):.1f}%)" if n * m else ""
    line(f"  compatible pairs: {n_compatible} of {n * m}{share}; {unavailable} of them to targets with capacity 0")
    line(f"  sources with no available target: {len(stranded)} of {n}")
    for i in stranded:
        line(f"    {sources.ids[i]:<24}  {_describe(source_records[i])}")

    line()
    line(f"Ranked candidates (top {k}) of a few sources:")
    for i in _showcase(source_records, indices):
        line(f"  {sources.ids[i]}  [{_describe(source_records[i])}]")
        r = ranking.which[i]
        for rank, j in ranking.candidates(r):
            line(f"    {rank}. {targets.ids[j]:<36}  {_describe(target_records[j]):<32}  {ranking.parts.words((r, rank - 1))}")

    counts = result.reason_counts()
    failing = n * m - n_compatible
    line()
    line(f"Why pairs fail ({failing} incompatible pairs; one pair can fail for several reasons):")
    width = max((len(name) for name in counts), default=0)
    for name, count in counts.items():
        line(f"  {name:<{width}}  {count:6d}  {100 * count / failing:5.1f}%")

    example = _stranded_example(result, source_records, target_records, stranded)
    if example is not None:
        i, j = example
        line()
        line(f"Why {sources.ids[i]} has nowhere to go, against a target of the same type:")
        for text in result.explain(i, j).splitlines():
            line(f"  {text}")


def _describe(record: dict[str, Any]) -> str:
    attributes = record.get("self", {})
    parts = [str(attributes[name]) for name in ("mdev_type", "software_version") if attributes.get(name)]
    if record.get("migratable") is False:
        parts.append("not migratable")
    return " ".join(parts)


def _showcase(source_records: list[dict[str, Any]], indices: np.ndarray) -> list[int]:
    """The first source with the most candidates per (device_api, vendor_driver)."""
    best: dict[tuple[str, str], int] = {}
    for i, record in enumerate(source_records):
        attributes = record.get("self", {})
        key = (str(attributes.get("device_api", "")), str(attributes.get("vendor_driver", "")))
        found = int((indices[i] >= 0).sum()) if indices.shape[1] else 0
        if found and (key not in best or found > int((indices[best[key]] >= 0).sum())):
            best[key] = i
    return sorted(best.values())


def _stranded_example(
    result: MatchResult,
    source_records: Sequence[Mapping[str, Any]],
    target_records: Sequence[Mapping[str, Any]],
    stranded: Iterable[int],
) -> tuple[int, int] | None:
    """A stranded source and a target on another host with the same score_type value."""
    key = result.policy.score_type
    if not key:
        return None
    for i in stranded:
        wanted = source_records[i]["self"].get(key)
        host = result.sources.hosts[i]
        for j, record in enumerate(target_records):
            if wanted and record["self"].get(key) == wanted and result.targets.hosts[j] != host:
                return i, j
    return None
