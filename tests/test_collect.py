"""``fastmatch collect``, ``--input-format``, and ``--skip-invalid`` with ``--rejects`` on the command line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import fastmatch
from sysfs_tree import GVT_UUID, gvt_host
from test_cli import assert_one_error_line as one_error_line
from test_cli import run

LIBVIRT = Path(__file__).parent / "data" / "libvirt"
V5_4 = "class/mdev_bus/0000:00:02.0/mdev_supported_types/i915-GVTg_V5_4"


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


# -- collect ---------------------------------------------------------------------------------
def test_collect_sysfs_writes_fleet_json_lines_that_match_reads_back(capsys, tmp_path):
    gvt_host(tmp_path / "sys")
    status, out, err = run(capsys, "collect", "--sysfs", tmp_path / "sys", "--host", "kbl-02", "-o", tmp_path / "fleet")
    assert (status, out, err) == (0, "", "")
    assert sorted(os.listdir(tmp_path / "fleet")) == ["sources.jsonl", "targets.jsonl"]
    sources, targets = (tmp_path / "fleet" / "sources.jsonl", tmp_path / "fleet" / "targets.jsonl")
    assert [r["id"] for r in jsonl(sources.read_text())] == [GVT_UUID]
    records = jsonl(targets.read_text())
    assert [r["id"] for r in records] == ["kbl-02/0000:00:02.0/i915-GVTg_V5_4", "kbl-02/0000:00:02.0/i915-GVTg_V5_8"]
    assert all(r["host"] == "kbl-02" for r in records + jsonl(sources.read_text()))
    assert fastmatch.load(targets).to_records() == records  # read back unchanged
    assert fastmatch.load(targets).to_records() == fastmatch.DeviceSet.from_records(records).to_records()
    status, out, _ = run(capsys, "match", sources, targets, "--format", "json", "--policy", no_host_exclusion(tmp_path))
    assert status == 0 and jsonl(out)[0]["candidates"][0]["target"] == "kbl-02/0000:00:02.0/i915-GVTg_V5_4"


def test_collect_without_role_needs_a_directory(capsys, tmp_path):
    gvt_host(tmp_path / "sys")
    for output in ([], ["-o", "-"]):
        status, out, err = run(capsys, "collect", "--sysfs", tmp_path / "sys", *output)
        assert (status, out) == (2, "")
        assert one_error_line(err) == (
            "fastmatch: error: collect without --role writes two files, DIR/sources.jsonl and DIR/targets.jsonl: "
            "give -o DIR (or --role source|target for one side on stdout or -o FILE)"
        )
    (tmp_path / "a-file").write_text("")
    status, _, err = run(capsys, "collect", "--sysfs", tmp_path / "sys", "-o", tmp_path / "a-file")
    assert status == 2
    assert one_error_line(err) == (
        f"fastmatch: error: -o {tmp_path / 'a-file'}: is not a directory (collect without --role writes two files into one)"
    )
    assert (tmp_path / "a-file").read_text() == ""


def test_collect_output_file_and_roles(capsys, tmp_path):
    gvt_host(tmp_path / "sys")
    sources, targets = tmp_path / "sources.jsonl", tmp_path / "targets.jsonl"
    assert run(capsys, "collect", "--sysfs", tmp_path / "sys", "--role", "source", "-o", sources) == (0, "", "")
    assert run(capsys, "collect", "--sysfs", tmp_path / "sys", "--role", "target", "--output", targets)[0] == 0
    assert [r["id"] for r in jsonl(sources.read_text())] == [GVT_UUID]
    assert len(jsonl(targets.read_text())) == 2
    assert sorted(os.listdir(tmp_path)) == ["sources.jsonl", "sys", "targets.jsonl"]  # no temporary file left
    status, out, _ = run(capsys, "match", sources, targets, "--format", "json", "--policy", no_host_exclusion(tmp_path))
    assert status == 0
    assert jsonl(out)[0]["candidates"][0]["target"] == "0000:00:02.0/i915-GVTg_V5_4"


def no_host_exclusion(tmp_path: Path) -> Path:
    policy = tmp_path / "policy.toml"
    policy.write_text("exclude_same_host = false\n")
    return policy


def test_collect_libvirt_files_and_directories(capsys, tmp_path):
    status, out, _ = run(
        capsys, "collect", "--libvirt-xml", LIBVIRT / "mdev_4b20d080_1b54_4048_85b3_a6a62d165c01.xml",
        LIBVIRT / "pci_0000_00_02_0.xml", "--role", "source",
    )
    assert status == 0
    (mdev,) = jsonl(out)
    assert mdev["self"]["device_id"] == "8086591d"  # its parent came in another file
    status, out, _ = run(capsys, "collect", "--libvirt-xml", LIBVIRT, "--host", "h", "-o", tmp_path / "h")
    assert (status, out) == (0, "")
    sources, targets = (jsonl((tmp_path / "h" / name).read_text()) for name in ("sources.jsonl", "targets.jsonl"))
    assert (len(sources), len(targets)) == (1, 4)


def test_collect_sysfs_defaults_to_slash_sys(capsys):
    status, out, err = run(capsys, "collect", "--sysfs", "--role", "target")
    assert status == 0  # this machine's devices; none where the kernel has no mdev bus
    assert all(record.get("capacity", 1) >= 0 for record in jsonl(out))


def test_collect_needs_one_input(capsys, tmp_path):
    assert run(capsys, "collect")[0] == 2
    assert run(capsys, "collect", "--sysfs", tmp_path, "--libvirt-xml", tmp_path)[0] == 2


def test_collect_error_writes_nothing(capsys, tmp_path):
    tree = gvt_host(tmp_path / "sys")
    (tree.root / V5_4 / "available_instances").write_text("lots\n")
    output = tmp_path / "fleet"
    status, out, err = run(capsys, "collect", "--sysfs", tree.root, "-o", output)
    assert (status, out) == (2, "")
    assert f"{tree.root / V5_4 / 'available_instances'}: record '0000:00:02.0/i915-GVTg_V5_4': field 'capacity'" in one_error_line(err)
    assert not output.exists() and sorted(os.listdir(tmp_path)) == ["sys"]


def test_collect_validates_what_it_writes(capsys, tmp_path):
    tree = gvt_host(tmp_path / "sys")
    (tree.root / V5_4 / "migration" / "software_version").write_text("v2+\n")
    status, _, err = run(capsys, "collect", "--sysfs", tree.root, "--role", "target")
    assert status == 2
    assert one_error_line(err) == (
        f"fastmatch: error: {tree.root / V5_4 / 'migration' / 'software_version'}: record '0000:00:02.0/i915-GVTg_V5_4': field 'self.software_version': "
        "invalid version 'v2+' (expected [v]N(.N)*[-prerelease][+build])"
    )


def test_collect_skip_invalid_writes_the_rejects(capsys, tmp_path):
    tree = gvt_host(tmp_path / "sys")
    (tree.root / V5_4 / "available_instances").write_text("lots\n")
    (tree.root / "bus/mdev/devices" / GVT_UUID / "migration" / "pv_mode").write_text("none++ppgtt\n")
    rejects = tmp_path / "rejects.jsonl"
    status, out, err = run(capsys, "collect", "--sysfs", tree.root, "--skip-invalid", "--rejects", rejects, "-o", tmp_path / "f")
    assert (status, out) == (0, "")
    assert (tmp_path / "f" / "sources.jsonl").read_text() == ""
    assert [r["id"] for r in jsonl((tmp_path / "f" / "targets.jsonl").read_text())] == ["0000:00:02.0/i915-GVTg_V5_8"]
    assert err == f"fastmatch: 2 invalid records skipped (written to {rejects})\n"
    first, second = jsonl(rejects.read_text())
    assert first == {
        "reason": f"{tree.root / V5_4 / 'available_instances'}: record '0000:00:02.0/i915-GVTg_V5_4': "
        "field 'capacity': expected an integer >= 0, got 'lots'",
        "record": V5_4,
    }
    assert second["reason"].startswith(f"{tree.root / 'bus/mdev/devices' / GVT_UUID / 'migration' / 'pv_mode'}: record '{GVT_UUID}': field 'self.pv_mode'")
    assert second["record"]["id"] == GVT_UUID  # validated records are written as read


def test_skip_invalid_without_rejects_file_prints_each_reason(capsys, tmp_path):
    tree = gvt_host(tmp_path / "sys")
    (tree.root / V5_4 / "available_instances").write_text("lots\n")
    status, out, err = run(capsys, "collect", "--sysfs", tree.root, "--skip-invalid", "--role", "source")
    assert status == 0 and len(jsonl(out)) == 1
    lines = err.splitlines()
    assert lines[0].startswith(f"fastmatch: rejected: {tree.root / V5_4 / 'available_instances'}: ")
    assert lines[1:] == ["fastmatch: 1 invalid record skipped"]


def test_rejects_needs_skip_invalid(capsys, tmp_path):
    gvt_host(tmp_path / "sys")
    status, out, err = run(capsys, "collect", "--sysfs", tmp_path / "sys", "--rejects", tmp_path / "r.jsonl", "-o", tmp_path / "f")
    assert (status, out) == (2, "")
    assert "--rejects FILE goes with --skip-invalid" in one_error_line(err)


# -- match -----------------------------------------------------------------------------------
GOOD = {"id": "t1", "self": {"mdev_type": "x"}}


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_match_skip_invalid(capsys, tmp_path):
    sources = write_lines(tmp_path / "s.jsonl", [
        json.dumps({"id": "s1", "self": {"mdev_type": "x"}}),
        '{"id": "s2", "self": {',  # does not decode
        json.dumps({"id": "s3", "self": {"aggregator": "two"}}),  # does not validate
    ])
    targets = write_lines(tmp_path / "t.jsonl", [json.dumps(GOOD), json.dumps({"id": "t1", "self": {}})])
    rejects, output = tmp_path / "rejects.jsonl", tmp_path / "out.csv"
    status, out, err = run(capsys, "match", sources, targets, "--skip-invalid", "--rejects", rejects, "--format", "csv", "-o", output)
    assert (status, out) == (0, "")
    assert err == f"fastmatch: 3 invalid records skipped (written to {rejects})\n"
    header, row = output.read_text().splitlines()
    assert header.startswith("source,rank,target,exact,") and row.startswith("s1,1,t1,")
    reasons = [r["reason"] for r in jsonl(rejects.read_text())]
    assert reasons[0].startswith(f"{sources}:2: invalid JSON")
    assert reasons[1].startswith(f"{sources}:3: record 's3': field 'self.aggregator': invalid integer 'two'")
    assert reasons[2] == f"{targets}:2: record 't1': field 'id': duplicate id 't1' (first seen in record #0)"
    assert [r["record"] for r in jsonl(rejects.read_text())][:2] == ['{"id": "s2", "self": {', {"id": "s3", "self": {"aggregator": "two"}}]


def test_match_without_skip_stops_at_the_first_error_and_writes_nothing(capsys, tmp_path):
    sources = write_lines(tmp_path / "s.jsonl", [json.dumps(GOOD), '{"id": "s2", "self": {'])
    output = tmp_path / "out.csv"
    status, out, err = run(capsys, "match", sources, sources, "-o", output)
    assert (status, out) == (2, "")
    assert one_error_line(err).startswith(f"fastmatch: error: {sources}:2: invalid JSON")
    assert not output.exists()


def test_input_format_on_every_reading_command(capsys, tmp_path):
    text = tmp_path / "dev.cfg"
    text.write_text("SELF:\nmdev_type=x\n")  # detected as text anyway; forcing must agree
    assert run(capsys, "check", text, text, "--input-format", "text")[0] == 1  # one device: the same device
    assert run(capsys, "explain", text, text, "dev", "dev", "--input-format", "text")[0] == 0
    assert run(capsys, "match", text, text, "--input-format", "text")[0] == 0
    status, _, err = run(capsys, "match", text, text, "--input-format", "libvirt")
    assert status == 2 and f"{text}:1: invalid XML" in one_error_line(err)
    assert run(capsys, "match", text, text, "--input-format", "yaml")[0] == 2
