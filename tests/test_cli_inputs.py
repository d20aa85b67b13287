"""Inputs on the command line: compressed files read by content, directories that hold one side,
and ``collect`` writing both sides to a directory."""

from __future__ import annotations

import gzip
import json
import os
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import pytest

import fastmatch
from fastmatch.errors import InputError
from fastmatch.files import MAX_LINE_BYTES, read_input
from test_cli import SOURCES, TARGETS, assert_one_error_line, run, write_jsonl

zstd = pytest.importorskip("backports.zstd") if sys.version_info < (3, 14) else pytest.importorskip("compression.zstd")

LIBVIRT = Path(__file__).parent / "data" / "libvirt"
GVT_XML = [LIBVIRT / "pci_0000_00_02_0.xml", LIBVIRT / "mdev_4b20d080_1b54_4048_85b3_a6a62d165c01.xml"]
COMPRESS = {"gzip": gzip.compress, "zstd": zstd.compress}


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def plain_inputs(tmp_path: Path) -> dict[str, Path]:
    """One input of each format, plain."""
    text = tmp_path / "device.txt"
    text.write_text("DEVICE: t1\nSELF:\n  device_api=vfio-pci\n  mdev_type=i915-GVTg_V5_4\nCOMPATIBLE:\n  mdev_type=i915-GVTg_V5_{n:int:4,8}\n")
    array = tmp_path / "array.json"
    array.write_text(json.dumps(TARGETS))
    xml = tmp_path / "host.xml"
    xml.write_bytes(b"<devices>" + b"".join(p.read_bytes() for p in GVT_XML) + b"</devices>")
    return {
        "json lines": write_jsonl(tmp_path / "sources.jsonl", SOURCES),
        "json array": array,
        "text": text,
        "libvirt": xml,
    }


@pytest.mark.parametrize("compression", sorted(COMPRESS))
@pytest.mark.parametrize("kind", ["json lines", "json array", "text", "libvirt"])
def test_compressed_inputs_read_as_their_plain_form_whatever_their_name(tmp_path, compression, kind):
    plain = plain_inputs(tmp_path)[kind]
    packed = tmp_path / "no-telling-name.dat"  # told by content, not by the name
    packed.write_bytes(COMPRESS[compression](plain.read_bytes()))
    assert fastmatch.load(packed).to_records() == fastmatch.load(plain).to_records()
    assert len(fastmatch.load(packed)) > 0


@pytest.mark.parametrize("compression", sorted(COMPRESS))
def test_compressed_inputs_on_the_command_line_stdin_and_in_a_directory(capsys, monkeypatch, tmp_path, compression):
    sources = write_jsonl(tmp_path / "sources.jsonl", SOURCES)
    targets = write_jsonl(tmp_path / "targets.jsonl", TARGETS)
    expected = run(capsys, "match", sources, targets, "--format", "json")
    assert expected[0] == 0
    packed = tmp_path / "packed"
    packed.mkdir()
    (packed / "targets.jsonl.z").write_bytes(COMPRESS[compression](targets.read_bytes()))
    assert run(capsys, "match", sources, packed, "--format", "json") == expected

    piped = tmp_path / "piped"
    piped.write_bytes(COMPRESS[compression](sources.read_bytes()))
    with open(piped, "rb") as stream:  # standard input is read through its descriptor
        monkeypatch.setattr(sys, "stdin", stream)
        assert run(capsys, "match", "-", packed, "--format", "json") == expected


def test_multi_member_gzip_and_multi_frame_zstd_are_one_input(tmp_path):
    first, second = SOURCES[:1], SOURCES[1:]
    halves = ["".join(json.dumps(r) + "\n" for r in part).encode() for part in (first, second)]
    for compression, compress in COMPRESS.items():
        path = tmp_path / compression
        path.write_bytes(compress(halves[0]) + compress(halves[1]))  # as `cat a.gz b.gz` makes
        assert fastmatch.load(path).ids == [r["id"] for r in SOURCES]


def test_a_compressed_policy_is_read_too(capsys, tmp_path):
    policy = tmp_path / "policy"
    policy.write_bytes(gzip.compress(b"exclude_same_host = false\n"))
    assert fastmatch.Policy.from_toml(policy).exclude_same_host is False


def gzip_bomb(decompressed: int) -> bytes:
    """``decompressed`` bytes of newlines in 16 MiB gzip members: about 1000 to 1 (16 KB a member)."""
    member = gzip.compress(b"\n" * (16 << 20), compresslevel=9)
    return member * (decompressed // (16 << 20))


def test_a_gzip_bomb_is_refused_at_the_limit_without_filling_memory(tmp_path):
    bomb = tmp_path / "bomb"
    bomb.write_bytes(gzip_bomb(1 << 30))  # 1 GiB decompressed, about 1 MB on disk
    assert bomb.stat().st_size < 2 << 20
    tracemalloc.start()
    try:
        with pytest.raises(InputError) as refused:
            read_input(bomb, limit=8 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(refused.value) == f"{bomb}: is gzip-compressed and decompresses to more than the limit of {8 << 20} bytes for one input"
    assert peak < 32 << 20  # the limit and a chunk or two, never the gigabyte


def test_a_zstd_bomb_is_refused_at_the_limit(tmp_path):
    bomb = tmp_path / "bomb"
    bomb.write_bytes(zstd.compress(b"\n" * (256 << 20)))  # a few KB on disk
    with pytest.raises(InputError, match="is zstd-compressed and decompresses to more than the limit of 8388608 bytes"):
        read_input(bomb, limit=8 << 20)


def test_a_policy_bomb_is_one_error_line(capsys, tmp_path):
    sources = write_jsonl(tmp_path / "sources.jsonl", SOURCES)
    policy = tmp_path / "policy.toml"
    policy.write_bytes(gzip_bomb(64 << 20))
    status, out, err = run(capsys, "match", sources, sources, "--policy", policy)
    assert (status, out) == (2, "")
    assert assert_one_error_line(err) == (
        f"fastmatch: error: {policy}: cannot read policy: is gzip-compressed and decompresses to more than the limit of 1048576 bytes for one input"
    )


def test_the_line_limit_holds_on_decompressed_bytes(capsys, tmp_path):
    long_line = tmp_path / "long"
    long_line.write_bytes(gzip.compress(b'{"id": "' + b"x" * (MAX_LINE_BYTES + 10) + b'"}\n'))
    status, _, err = run(capsys, "match", long_line, long_line)
    assert status == 2
    assert assert_one_error_line(err) == (
        f"fastmatch: error: {long_line}:1: line is longer than the limit of {MAX_LINE_BYTES} bytes for one line"
    )


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda data: gzip.compress(data)[:-12], "is gzip-compressed and ends early (truncated)"),
        (lambda data: gzip.compress(data) + b"garbage", "is gzip-compressed and cannot be decompressed (Not a gzipped file (b'ga'))"),
        (lambda data: zstd.compress(data)[:-6], "is zstd-compressed and ends early (truncated)"),
        (lambda data: data[:0] + b"\xfd7zXZ\x00\x00\x04", "is xz-compressed (decompress it first: xz -d); fastmatch reads plain, gzip- or zstd-compressed input"),
        (lambda data: b"BZh91AY&SY" + data, "is bzip2-compressed (decompress it first: bunzip2); fastmatch reads plain, gzip- or zstd-compressed input"),
    ],
    ids=["truncated gzip", "gzip then garbage", "truncated zstd", "xz", "bzip2"],
)
def test_broken_or_unread_compression_is_one_error_line(capsys, tmp_path, make, message):
    sources = write_jsonl(tmp_path / "sources.jsonl", SOURCES)
    broken = tmp_path / "broken"
    broken.write_bytes(make(sources.read_bytes()))
    status, out, err = run(capsys, "match", broken, sources)
    assert (status, out) == (2, "")
    assert assert_one_error_line(err) == f"fastmatch: error: {broken}: {message}"


def test_zstd_without_its_module_names_the_extra(capsys, monkeypatch, tmp_path):
    packed = tmp_path / "sources.zst"
    packed.write_bytes(zstd.compress(write_jsonl(tmp_path / "sources.jsonl", SOURCES).read_bytes()))
    monkeypatch.setitem(sys.modules, "compression.zstd", None)  # import fails
    monkeypatch.setitem(sys.modules, "backports.zstd", None)
    status, _, err = run(capsys, "match", packed, packed)
    assert status == 2
    assert "pip install 'fastmatch[zstd]'" in assert_one_error_line(err)


# -- a directory input is one side -------------------------------------------------------------
def test_generate_output_folder_as_an_input_is_an_error_that_says_so(capsys, tmp_path):
    fleet = tmp_path / "fleet"
    assert run(capsys, "generate", "--sources", 5, "--targets", 5, "-o", fleet)[0] == 0
    status, out, err = run(capsys, "match", fleet, fleet / "targets.jsonl")
    assert (status, out) == (2, "")
    assert assert_one_error_line(err) == (
        f"fastmatch: error: {fleet}: holds both sources (sources.jsonl) and targets (targets.jsonl): a directory input "
        f"is one side of a match; give the files themselves (e.g. {fleet / 'sources.jsonl'} {fleet / 'targets.jsonl'})"
    )
    with pytest.raises(InputError, match="holds both sources"):
        fastmatch.load(fleet)  # the API as well, whatever the role


def test_a_directory_of_one_side_is_read_and_one_named_for_the_other_side_is_refused(capsys, tmp_path):
    sources, targets = tmp_path / "sources", tmp_path / "targets"
    sources.mkdir()
    targets.mkdir()
    write_jsonl(sources / "sources.jsonl", SOURCES[:2])
    write_jsonl(sources / "more-sources.jsonl", SOURCES[2:])  # any other name: part of the side
    write_jsonl(targets / "targets.jsonl.gz", TARGETS)
    (targets / "targets.jsonl.gz").write_bytes(gzip.compress((targets / "targets.jsonl.gz").read_bytes()))
    status, out, err = run(capsys, "match", sources, targets, "--format", "json")
    assert (status, err) == (0, "")
    assert [line["source"] for line in jsonl(out)] == ["s3", "s1", "s2"]  # files in name order
    status, out, err = run(capsys, "match", targets, sources)
    assert (status, out) == (2, "")
    assert assert_one_error_line(err) == (
        f"fastmatch: error: {targets}: is read for the sources but holds targets (targets.jsonl.gz); "
        "give a directory or file of sources"
    )


# -- one device, one id, from either collector -------------------------------------------------
def test_sysfs_and_libvirt_give_one_machines_devices_the_same_records(capsys, tmp_path):
    """One machine described twice, as its sysfs tree and as `virsh nodedev-dumpxml` of the
    same devices (tests/data/libvirt): a PCI GPU, an s390 subchannel and the AP matrix."""
    from sysfs_tree import gvt_host

    tree = gvt_host(tmp_path / "sys", migration=False)
    subchannel = tree.parent("0.0.0052", bus="css0", vendor=None, device=None, driver="vfio_ccw")
    tree.mdev_type(subchannel, "vfio_ccw-io", device_api="vfio-ccw", available="1")
    matrix = tree.parent("matrix", bus="vfio_ap", vendor=None, device=None, driver=None)
    tree.mdev_type(matrix, "vfio_ap-passthrough", device_api="vfio-ap", available="65536")

    def collected(*how) -> dict[str, list[dict]]:
        status, _, err = run(capsys, "collect", *how, "--host", "kbl-02", "-o", tmp_path / "out")
        assert (status, err) == (0, "")
        return {name: jsonl((tmp_path / "out" / name).read_text()) for name in ("sources.jsonl", "targets.jsonl")}

    by_sysfs = collected("--sysfs", tree.root)
    by_libvirt = collected("--libvirt-xml", LIBVIRT)

    def by_id(records):
        return {r["id"]: r for r in records}

    targets = by_id(by_libvirt["targets.jsonl"])
    assert sorted(targets) == [
        "kbl-02/0.0.0052/vfio_ccw-io", "kbl-02/0000:00:02.0/i915-GVTg_V5_4", "kbl-02/0000:00:02.0/i915-GVTg_V5_8",
        "kbl-02/matrix/vfio_ap-passthrough",
    ]
    assert targets == by_id(by_sysfs["targets.jsonl"])  # the same ids, and the same records
    sources = [r["id"] for r in by_libvirt["sources.jsonl"]]
    assert sources == [r["id"] for r in by_sysfs["sources.jsonl"]] == ["4b20d080-1b54-4048-85b3-a6a62d165c01"]


@pytest.mark.parametrize(
    "capability, expected",
    [
        ("<domain>0</domain><bus>59</bus><slot>0</slot><function>4</function>", "0000:3b:00.4/nvidia-64"),
        ("<domain>0x10000</domain><bus>0x3b</bus><slot>0x1f</slot><function>7</function>", "10000:3b:1f.7/nvidia-64"),
        ("", "0000:3b:00.0/nvidia-64"),  # no address: the last part of <path>
    ],
)
def test_a_pci_parent_is_named_by_its_address(tmp_path, capability, expected):
    xml = tmp_path / "gpu.xml"
    xml.write_text(
        "<device><name>pci_0000_3b_00_0</name><path>/sys/devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0</path>"
        f"<capability type='pci'>{capability}<vendor id='0x10de'/><product id='0x1eb8'/>"
        "<capability type='mdev_types'><type id='nvidia-64'><deviceAPI>vfio-pci</deviceAPI>"
        "<availableInstances>4</availableInstances></type></capability></capability></device>"
    )
    assert fastmatch.load(xml, role="target").ids == [expected]


def test_a_bad_pci_address_is_an_error_naming_the_element(capsys, tmp_path):
    xml = tmp_path / "gpu.xml"
    xml.write_text(
        "<device><name>pci_0000_3b_00_0</name><capability type='pci'>"
        "<domain>0</domain><bus>256</bus><slot>0</slot><function>0</function>"
        "<capability type='mdev_types'><type id='nvidia-64'><availableInstances>4</availableInstances></type>"
        "</capability></capability></device>"
    )
    status, _, err = run(capsys, "collect", "--libvirt-xml", xml, "--role", "target")
    assert status == 2
    assert assert_one_error_line(err) == (
        f"fastmatch: error: {xml}:1: record 'pci_0000_3b_00_0': expected a PCI bus number from 0 to 0xff, got '256' "
        "(at /device/capability[@type='pci']/bus)"
    )


@pytest.mark.parametrize("bad", [("sources",), ("targets",), ("sources", "targets")])
def test_fleets_read_side_by_side_report_the_error_they_would_in_turn(capsys, tmp_path, bad):
    """The sources and the targets are read at once (fastmatch.cli._read_fleets); the error
    reported is still the sources' when both are bad, and names the file it is in."""
    paths = {}
    for role, records in (("sources", SOURCES), ("targets", TARGETS)):
        path = write_jsonl(tmp_path / f"{role}.jsonl", records)
        if role in bad:
            path.write_text(path.read_text(encoding="utf-8") + '{"id": "x", "self": 5}\n', encoding="utf-8")
        paths[role] = path
    status, out, err = run(capsys, "match", paths["sources"], paths["targets"], "--quiet")
    assert status == 2 and out == ""
    line = assert_one_error_line(err)
    bad_line = len(SOURCES if bad[0] == "sources" else TARGETS) + 1
    assert f"{bad[0]}.jsonl:{bad_line}: record 'x': field 'self'" in line, line


def test_an_error_in_the_sources_is_reported_without_waiting_for_the_targets(capsys, tmp_path):
    """The targets are read in a thread of their own; a bad source ends the command at once,
    even while that thread is still waiting for its input (a named pipe nobody writes yet)."""
    sources = write_jsonl(tmp_path / "sources.jsonl", SOURCES + [{"id": "x", "self": 5}])
    targets = tmp_path / "targets.fifo"
    os.mkfifo(targets)

    def release_the_reader() -> None:  # the pipe's writer: lets the targets' reading end
        with open(targets, "w", encoding="utf-8") as pipe:
            pipe.write("".join(json.dumps(r) + "\n" for r in TARGETS))

    # Only if the command waited for the targets: after 20 s, unblock it (the test then fails).
    rescue = threading.Timer(20, release_the_reader)
    rescue.start()
    started = time.monotonic()
    status, out, err = run(capsys, "match", sources, targets, "--quiet")
    waited = time.monotonic() - started
    rescue.cancel()
    readers = [t for t in threading.enumerate() if t.name.startswith("fastmatch-targets")]
    if readers:  # still waiting for the pipe, as expected: let it finish
        release_the_reader()
        for reader in readers:
            reader.join(20)
    assert status == 2 and out == ""
    assert "sources.jsonl:4: record 'x'" in assert_one_error_line(err)
    assert waited < 10, f"the command waited {waited:.1f} s for the targets"
    assert readers, "the targets' reader had ended before the error was reported"
