"""Fuzzing every reader: whatever the input, the only failure is a FastmatchError.

Inputs are valid files of each format with random edits (tokens of the
format, stray bytes, cut or doubled spans), random bytes, and sysfs trees
whose files and links are changed at random. Each input goes through
``fastmatch.load``, the skip mode (``on_error``: then nothing may escape at
all but a file-level FastmatchError) and the command line (exit 0 or 2).
The command line's arguments are fuzzed too: every command with options
and values drawn from valid, odd and hostile ones (huge and non-ASCII
numbers, devices, missing files, directories, the same path twice).

The default run takes a few seconds. The long run, by hand::

    HYPOTHESIS_PROFILE=long PYTHONPATH=src:tests python -m pytest tests/test_fuzz.py

(``FASTMATCH_FUZZ_EXAMPLES=N`` sets the examples per test of either run.)
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path

import pytest

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastmatch
from fastmatch import DeviceSet, FastmatchError
from fastmatch.cli import main
from fastmatch.formats import read_path
from sysfs_tree import GVT_UUID, gvt_host

DATA = Path(__file__).parent / "data"
LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long"
EXAMPLES = int(os.environ.get("FASTMATCH_FUZZ_EXAMPLES", 4000 if LONG else 60))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- seeds and the tokens each format is made of ----------------------------------------------
JSON_SEEDS = [
    b'{"id": "s1", "host": "a", "self": {"mdev_type": "i915-GVTg_V5_4", "aggregator": "2", "pv_mode": "none+ppgtt", "software_version": "1.2.0"}}\n'
    b'{"id": "t1", "host": "b", "capacity": 2, "migration_version": "x", "self": {"mdev_type": "i915-GVTg_V5_2"}, '
    b'"compatible": [{"mdev_type": "i915-GVTg_V5_{n:int:1,2,4,8}", "aggregator": "{n}/2", "pv_mode": ["none", "ppgtt"]}]}\n',
    b'[\n {"id": "a", "self": {"pciid": "8086591d"}},\n {"id": "b", "self": {}, "migratable": false}\n]\n',
    (DATA / "seed_gvt.json").read_bytes(),
]
JSON_TOKENS = [
    b"{", b"}", b"[", b"]", b'"', b":", b",", b"\\", b"\n", b"0", b"-1", b"1e999", b"18446744073709551616",
    b"true", b"null", b"NaN", b'"id"', b'"self"', b'"compatible"', b'"capacity"', b'"colour"', b'"type"',
    b'"{v:int:1,2}"', b'"{v}/0"', b'"*"', b'""', b"\xef\xbb\xbf", b"\xff", "\u2028".encode(), b"[" * 50, b"\\ud800", b"\\udc00", b"(" * 40, b"-" * 40,
]
TEXT_SEEDS = [
    (DATA / "upstream_gvt_target.txt").read_bytes(),
    b"DEVICE: a\nhost=h\ncapacity=2\nSELF:\n mdev_type=x\n pv_mode=\"none+ppgtt\"\nDEVICE: b\nSELF:\n mdev_type=y\nCOMPATIBLE:\n mdev_type=x # ok\n",
]
TEXT_TOKENS = [
    b"SELF:", b"COMPATIBLE:", b"DEVICE: d", b"=", b'"', b"#", b" ", b"{", b"}", b"\n", b"\r\n", b"{a:int:1,2}",
    b"{a}", b"{a:string:\"x,y\"}", b"*", b"capacity=", b"migratable=", b"type=", b"interface_version=",
    b"\xef\xbb\xbf", b"\xff", b"99999999999999999999", b"(" * 40, b"-" * 40, b"/0", b"*",
]
XML_SEEDS = [
    (DATA / "libvirt" / "pci_0000_00_02_0.xml").read_bytes() + (DATA / "libvirt" / "mdev_4b20d080_1b54_4048_85b3_a6a62d165c01.xml").read_bytes(),
    b"<devices>" + (DATA / "libvirt" / "css_0_0_0052.xml").read_bytes() + (DATA / "libvirt" / "ap_matrix.xml").read_bytes() + b"</devices>",
]
XML_TOKENS = [
    b"<", b">", b"/>", b"</device>", b"<device>", b"<!DOCTYPE x [<!ENTITY a \"b\">]>", b"&a;", b"&amp;",
    b"<![CDATA[x]]>", b'<?xml version="1.0"?>', b"'", b'"', b"<availableInstances>", b"<uuid>",
    b"<attr name='software_version' value='x'/>", b"<capability type='mdev_types'>", b"<type id='t'>",
    b"<capability type='mdev'>", b"\n", b"\xff", b"\xef\xbb\xbf", b"<a>" * 40,
]


@st.composite
def edited(draw, seeds: list[bytes], tokens: list[bytes]) -> bytes:
    """A seed with a few random edits: tokens put in, spans cut, doubled or overwritten."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["insert", "delete", "double", "byte"]))
        if kind == "insert":
            data[at:at] = draw(st.sampled_from(tokens))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 40))]
        elif kind == "double":
            data[at:at] = data[at : at + draw(st.integers(1, 80))]
        elif at < len(data):
            data[at] = draw(st.integers(0, 255))
    return bytes(data)


def inputs(seeds: list[bytes], tokens: list[bytes]):
    return st.one_of(edited(seeds, tokens), st.binary(max_size=300))


# -- what must hold ---------------------------------------------------------------------------
def assert_only_fastmatch_errors(path: Path, input_format: str | None = None) -> None:
    try:
        fastmatch.load(path, input_format=input_format)
    except FastmatchError:
        pass

    # Skip mode: records are kept or handed over; only a file-level error may stop it.
    rejected: list = []
    try:
        records, places = read_path(path, input_format, on_error=lambda raw, exc: rejected.append(exc))
        kept = DeviceSet.from_records(records, source=str(path), lines=places, on_error=lambda raw, exc: rejected.append(exc))
        assert len(kept) + sum(1 for exc in rejected if exc.record is not None) >= len(records)
    except FastmatchError:
        pass
    assert all(isinstance(exc, FastmatchError) for exc in rejected)

    argv = ["match", str(path), str(path)] + (["--input-format", input_format] if input_format else [])
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        status = main(argv)
    assert status in (0, 2), err.getvalue()
    assert "Traceback" not in err.getvalue()


def fuzz_file(data: bytes, name: str, input_format: str | None = None) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / name
        path.write_bytes(data)
        assert_only_fastmatch_errors(path, input_format)


@FUZZ
@given(inputs(JSON_SEEDS, JSON_TOKENS))
def test_fuzz_json(data):
    fuzz_file(data, "fleet.jsonl")


@FUZZ
@given(inputs(TEXT_SEEDS, TEXT_TOKENS))
def test_fuzz_text(data):
    fuzz_file(data, "device.txt", "text")


@FUZZ
@given(inputs(XML_SEEDS, XML_TOKENS))
def test_fuzz_libvirt(data):
    fuzz_file(data, "node.xml", "libvirt")


@FUZZ
@given(st.one_of(*(inputs(seeds, tokens) for seeds, tokens in [(JSON_SEEDS, JSON_TOKENS), (TEXT_SEEDS, TEXT_TOKENS), (XML_SEEDS, XML_TOKENS)])))
def test_fuzz_detection(data):
    """Whatever format detection makes of the bytes."""
    fuzz_file(data, "input")


# -- sysfs ------------------------------------------------------------------------------------
V5_4 = "class/mdev_bus/0000:00:02.0/mdev_supported_types/i915-GVTg_V5_4"
SYSFS_FILES = [
    f"{V5_4}/available_instances", f"{V5_4}/device_api", f"{V5_4}/migration/software_version",
    f"{V5_4}/migration/pv_mode", f"{V5_4}/migration/compatible", f"{V5_4}/migration/migration_version",
    "devices/pci0000:00/0000:00:02.0/vendor", "devices/pci0000:00/0000:00:02.0/device",
    f"devices/pci0000:00/0000:00:02.0/{GVT_UUID}/migration/software_version",
    f"devices/pci0000:00/0000:00:02.0/{GVT_UUID}/migration/mdev_type",
]
SYSFS_LINKS = [
    "class/mdev_bus/0000:00:02.0", f"bus/mdev/devices/{GVT_UUID}",
    f"devices/pci0000:00/0000:00:02.0/{GVT_UUID}/mdev_type", "devices/pci0000:00/0000:00:02.0/driver",
]
LINK_TARGETS = ["/", "/etc", ".", "..", "../..", "../../..", "missing", "mdev_type", "devices", "vendor"]
FILE_CONTENTS = st.one_of(st.sampled_from([
    b"", b"\n", b"0", b"-1", b"lots", b"0x8086", b"0x", b"99999999999999999999", b"vfio-pci", b"1.2.x",
    b"none++ppgtt", b"\xff", b"\xef\xbb\xbfx", b"COMPATIBLE:\n", b"COMPATIBLE:\n a={n}\n", b"SELF:\n",
    b"COMPATIBLE:\n a={n:int:" + b",".join(b"%d" % k for k in range(5000)) + b"}\n",
]), st.binary(max_size=60))


@st.composite
def sysfs_changes(draw):
    changes = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["write", "remove", "relink", "directory", "fifo"]))
        if kind == "relink":
            changes.append((kind, draw(st.sampled_from(SYSFS_LINKS)), draw(st.sampled_from(LINK_TARGETS))))
        else:
            changes.append((kind, draw(st.sampled_from(SYSFS_FILES)), draw(FILE_CONTENTS)))
    return changes


def apply(root: Path, kind: str, relative: str, value) -> None:
    path = root / relative
    if not os.path.lexists(path.parent) or not path.parent.is_dir():
        return  # an earlier change removed or replaced its directory
    if os.path.lexists(path):
        if path.is_dir() and not path.is_symlink():
            os.rmdir(path) if not any(path.iterdir()) else None
        else:
            os.unlink(path)
    if os.path.lexists(path):
        return
    if kind == "write":
        path.write_bytes(value)
    elif kind == "relink":
        os.symlink(value, path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)


@settings(FUZZ, max_examples=max(EXAMPLES // 2, 1))  # each example builds and removes a tree
@given(sysfs_changes())
def test_fuzz_sysfs(changes):
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory) / "sys"
        gvt_host(root)
        for change in changes:
            apply(root, *change)
        assert_only_fastmatch_errors(root)


# -- the command line's arguments -------------------------------------------------------------
COMMANDS = ["match", "explain", "check", "reasons", "policy", "collect", "generate", "demo", "frobnicate", ""]
NUMBERS = st.one_of(
    st.integers(-3, 12).map(str),
    st.sampled_from(["100000", str(10**12), "9" * 5000, "²", "١٢", "-0", "+3", " 2", "1e3", "0x10", "", "-"]),
)
FLAGS = [
    "--top", "--workers", "--format", "--policy", "--input-format", "-o", "--output", "--rejects",
    "--skip-invalid", "--csv-formulas", "-q", "--role", "--host", "--sysfs", "--libvirt-xml",
    "--sources", "--targets", "--distinct", "--seed", "--record-fraction", "--help", "--version", "--",
    "--summary", "--summary-json", "--default",
]


@st.composite
def command_lines(draw, paths: dict[str, str]):
    """A command, then a few of: file arguments, flags with values, stray words."""
    files = st.sampled_from(sorted(paths.values()))
    argv = [draw(st.sampled_from(COMMANDS))]
    for _ in range(draw(st.integers(0, 7))):
        kind = draw(st.sampled_from(["file", "file", "flag", "word"]))
        if kind == "file":
            argv.append(draw(files))
        elif kind == "word":
            argv.append(draw(st.one_of(st.text(max_size=8), st.sampled_from(["s1", "t1", "-", "\x1b[2J", "=1+1"]))))
        else:
            flag = draw(st.sampled_from(FLAGS))
            argv.append(flag)
            if flag in ("--top", "--workers", "--sources", "--targets", "--distinct", "--seed", "--record-fraction"):
                argv.append(draw(NUMBERS))
            elif flag in ("--format", "--input-format", "--role"):
                argv.append(draw(st.sampled_from(["json", "csv", "table", "text", "libvirt", "sysfs", "source", "xml", ""])))
            elif flag in ("--policy", "-o", "--output", "--rejects", "--libvirt-xml", "--sysfs", "--summary-json"):
                argv.append(draw(files))
    return argv


@pytest.fixture(scope="module")
def cli_paths(tmp_path_factory):
    """Files for the fuzzed command lines; outputs only ever go here (or to /dev/null)."""
    root = tmp_path_factory.mktemp("cli")
    (root / "s.jsonl").write_bytes(JSON_SEEDS[0])
    (root / "one.jsonl").write_bytes(JSON_SEEDS[0].split(b"\n")[0] + b"\n")
    (root / "dev.txt").write_bytes(TEXT_SEEDS[0])
    (root / "host.xml").write_bytes(XML_SEEDS[0])
    (root / "policy.toml").write_text('direction = "both"\n[attributes.x]\naliases = 5\n')
    (root / "dir").mkdir()
    (root / "dir" / "a.jsonl").write_bytes(JSON_SEEDS[0])
    gvt_host(root / "sys")
    names = ["s.jsonl", "one.jsonl", "dev.txt", "host.xml", "policy.toml", "dir", "sys", "out", "missing/out"]
    paths = {name: str(root / name) for name in names}
    paths.update({"null": os.devnull, "zero": "/dev/zero", "stdin": "-"})
    return paths


def test_fuzz_command_line(cli_paths):
    @FUZZ
    @given(command_lines(cli_paths))
    def run(argv):
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
            status = main(argv)
        errors = err.getvalue()
        assert status in (0, 1, 2), (argv, status, errors)
        assert "Traceback" not in errors, (argv, errors)
        if status == 2:
            lines = errors.splitlines()
            assert lines and lines[-1].startswith("fastmatch: error: "), (argv, errors)
            assert sum(line.startswith("fastmatch: error: ") for line in lines) == 1, (argv, errors)
        elif status == 1:
            assert argv[0] == "check", argv
        assert not os.path.exists(os.path.join(cli_paths["dir"], "missing"))

    run()
