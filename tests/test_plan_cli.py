"""``fastmatch plan`` and ``fastmatch generate --vm-devices`` on the command line: outputs,
side files, and one-line errors with exit status 2."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from fastmatch import load
from fastmatch.cli import main
from fastmatch.drain.validate import check_plan
from fastmatch.generate import generate_records


def dev(i, host, mdev_type="A", version="1.0", **extra):
    return {"id": i, "host": host, "self": {"device_api": "vfio-pci", "mdev_type": mdev_type, "software_version": version}, **extra}


# s1 and s2 (one VM) must move off a; s3 off x. s3 has nowhere to go (type C).
SOURCES = [
    dev("s1", "a", vm="vm-1"),
    dev("s2", "a", "B", vm="vm-1"),
    dev("s3", "x", "C"),
    dev("stay", "b"),
]
TARGETS = [
    dev("b-A", "b", capacity=2),
    dev("b-B", "b", "B"),
    dev("c-A", "c", version="1.1"),
    dev("a-A", "a"),
]


def write_jsonl(path: Path, records) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return str(path)


@pytest.fixture
def fleet(tmp_path):
    return write_jsonl(tmp_path / "sources.jsonl", SOURCES), write_jsonl(tmp_path / "targets.jsonl", TARGETS)


def run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def one_error(capsys, *argv) -> str:
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("fastmatch: error: ") and "Traceback" not in err, err
    return lines[0]


def test_json_document(capsys, fleet):
    status, out, err = run(capsys, "plan", *fleet, "--drain", "a", "x", "--format", "json")
    assert status == 0 and err == ""
    document = json.loads(out)
    assert set(document) >= {"moves", "unplaced", "summary"}
    assert document["moves"] == [
        {"wave": 1, "vm": "vm-1", "source": "s1", "from_host": "a", "target": "b-A", "to_host": "b", "rank": 1,
         "score": {"exact": True, "same_type": True, "version": "1.0.0", "major_distance": 0, "minor_distance": 0}},
        {"wave": 1, "vm": "vm-1", "source": "s2", "from_host": "a", "target": "b-B", "to_host": "b", "rank": 1,
         "score": {"exact": True, "same_type": True, "version": "1.0.0", "major_distance": 0, "minor_distance": 0}},
    ]
    assert document["unplaced"] == [{"vm": "s3", "sources": ["s3"], "reasons": ["s3: no compatible target among 4: mdev_type (4)"]}]
    summary = document["summary"]
    assert summary["status"] == "optimal" and summary["vms"] == {"total": 2, "placed": 1, "unplaced": 1}
    assert summary["capacity_used"] == {"b": 2}
    assert check_plan(document, load(fleet[0]), load(fleet[1]), ["a", "x"]) == []


def test_output_file_csv_and_table(capsys, fleet, tmp_path):
    out_file = tmp_path / "plan.csv"
    status, out, err = run(capsys, "plan", *fleet, "--drain", "a", "x", "--format", "csv", "-o", out_file)
    assert status == 0 and out == ""
    assert err.startswith("fastmatch: Summary: 1 of 2 VMs placed")
    rows = list(csv.DictReader(io.StringIO(out_file.read_text())))
    assert [(r["kind"], r["source"], r["target"], r["rank"]) for r in rows] == [
        ("move", "s1", "b-A", "1"), ("move", "s2", "b-B", "1"), ("unplaced", "s3", "", "")
    ]
    assert rows[2]["reasons"] == "s3: no compatible target among 4: mdev_type (4)"
    status, out, _ = run(capsys, "plan", *fleet, "--drain", "a", "x")
    assert status == 0
    assert out.splitlines()[0].split() == ["WAVE", "VM", "SOURCE", "FROM", "TARGET", "TO", "RANK", "SCORE"]
    assert "Unplaced VMs (1):" in out and "status optimal" in out


def test_side_files(capsys, fleet, tmp_path):
    drain = tmp_path / "drain.txt"
    drain.write_text("# hosts to empty\na\n\nx  # the old one\n")
    limits = tmp_path / "limits.toml"
    limits.write_text('b = 1\n"c" = 1\n')
    status, out, _ = run(capsys, "plan", *fleet, "--drain-file", drain, "--host-limits", limits, "--format", "json",
                         "--strategy", "greedy", "--max-parallel", "1", "--time-limit", "30")
    assert status == 0
    document = json.loads(out)
    assert document["summary"]["drained_hosts"] == ["a", "x"]
    assert document["moves"] == []  # the VM needs 2 new devices on b, whose limit is 1
    assert check_plan(document, load(fleet[0]), load(fleet[1]), ["a", "x"], host_limits={"b": 1, "c": 1}) == []


def test_assume(capsys, fleet, tmp_path):
    assume = tmp_path / "assume.toml"
    assume.write_text('[[patch]]\nside = "targets"\nhosts = ["c"]\nself = { mdev_type = "C" }\n')
    status, out, _ = run(capsys, "plan", *fleet, "--drain", "a", "x", "--assume", assume, "--format", "json")
    assert status == 0
    assert {m["source"]: m["target"] for m in json.loads(out)["moves"]}["s3"] == "c-A"


@pytest.mark.parametrize(
    "side_file, content, argv, expected",
    [
        (None, None, ["--drain", "nowhere"], "--drain: drained host 'nowhere': no source or target device is on it"),
        ("drain.txt", "a\nnowhere\n", ["--drain-file"], "drain.txt:2: drained host 'nowhere'"),
        ("limits.toml", "zz = 1\n", ["--drain", "a", "--host-limits"], "limits.toml: field 'zz': unknown host 'zz'"),
        ("limits.json", '{"b": -1}', ["--drain", "a", "--host-limits"], "limits.json: field 'b': expected an integer >= 0"),
        ("limits.toml", "b = [", ["--drain", "a", "--host-limits"], "limits.toml: invalid TOML"),
        ("assume.toml", "[[patch]]\nhosts = ['b']\ncolour = 1\n", ["--drain", "a", "--assume"],
         "assume.toml: field 'patch[0].colour': unknown key 'colour'"),
        ("assume.toml", "[[patch]]\nhosts = ['b']\nself = { software_version = 'abc' }\n", ["--drain", "a", "--assume"],
         "field 'self.software_version'"),
        (None, None, [], "no host to drain"),
        (None, None, ["--drain", "a", "--time-limit", "0"], "expected a number of seconds > 0"),
    ],
)
def test_bad_input_is_one_line_exit_2(capsys, fleet, tmp_path, side_file, content, argv, expected):
    if side_file is not None:
        path = tmp_path / side_file
        path.write_text(content)
        argv = [*argv, path]
    assert expected in one_error(capsys, "plan", *fleet, *argv)


def test_vm_on_two_hosts_is_an_error(capsys, tmp_path):
    sources = write_jsonl(tmp_path / "s.jsonl", [dev("s1", "a", vm="v"), dev("s2", "b", vm="v")])
    targets = write_jsonl(tmp_path / "t.jsonl", [dev("t", "c")])
    line = one_error(capsys, "plan", sources, targets, "--drain", "a")
    assert line.endswith("s.jsonl: record 's2': field 'vm': VM 'v' has devices on hosts 'a' and 'b'; a VM's devices are on one host")


def test_generate_vm_devices(capsys, tmp_path):
    status, _, _ = run(capsys, "generate", "--sources", 300, "--targets", 300, "--distinct", 50, "--vm-devices", "2-3", "-o", tmp_path)
    assert status == 0
    devices = load(tmp_path / "sources.jsonl")
    by_vm: dict[str, list[int]] = {}
    for i, vm in enumerate(devices.vms):
        by_vm.setdefault(vm, []).append(i)
    sizes = [len(members) for members in by_vm.values()]
    assert all(len({devices.hosts[i] for i in members}) == 1 for members in by_vm.values())
    assert max(sizes) == 3 and min(sizes) >= 1 and sum(s >= 2 for s in sizes) > len(sizes) / 2  # a host's last VM may be cut short
    # The devices themselves are those of a fleet without VM groups.
    plain = list(generate_records("sources", 300, 50))
    grouped = list(generate_records("sources", 300, 50, vm_devices=(2, 3)))
    assert [{k: v for k, v in r.items() if k != "vm"} for r in plain] == [{k: v for k, v in r.items() if k != "vm"} for r in grouped]
    assert [r["vm"] for r in plain] == [f"vm-{i:07d}" for i in range(300)]
    assert "expected N or LO-HI" in one_error(capsys, "generate", "--sources", 1, "--targets", 1, "--distinct", 1, "--vm-devices", "3-2", "-o", tmp_path)


def test_generated_fleet_plan_is_valid(capsys, tmp_path):
    run(capsys, "generate", "--sources", 600, "--targets", 600, "--distinct", 60, "--vm-devices", "1-3", "-o", tmp_path)
    sources, targets = load(tmp_path / "sources.jsonl"), load(tmp_path / "targets.jsonl")
    drain = sorted(set(sources.hosts))[::10]
    status, out, _ = run(capsys, "plan", tmp_path / "sources.jsonl", tmp_path / "targets.jsonl", "--drain", *drain,
                         "--format", "json", "--max-per-host", "2")
    assert status == 0
    joint = json.loads(out)
    assert check_plan(joint, sources, targets, drain, max_per_host=2) == []
    status, out, _ = run(capsys, "plan", tmp_path / "sources.jsonl", tmp_path / "targets.jsonl", "--drain", *drain,
                         "--format", "json", "--strategy", "greedy")
    greedy = json.loads(out)
    assert check_plan(greedy, sources, targets, drain) == []
    assert joint["summary"]["vms"]["placed"] >= greedy["summary"]["vms"]["placed"]


def test_command_line_names_match_the_planner():
    from fastmatch import cli
    from fastmatch.drain import STRATEGIES
    from fastmatch.drain.output import FORMATTERS

    assert cli.PLAN_STRATEGIES == STRATEGIES and sorted(cli.PLAN_FORMATS) == sorted(FORMATTERS)
