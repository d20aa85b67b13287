"""The command line: every command, every exit status, every output format."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import fastmatch
from fastmatch import cli
from fastmatch.cli import main

DATA = Path(fastmatch.__file__).parent / "data"
DEMO_SOURCES = DATA / "demo_sources.jsonl"
DEMO_TARGETS = DATA / "demo_targets.jsonl"

GVT = {
    "device_api": "vfio-pci",
    "vendor_driver": "i915",
    "device_id": "8086591d",
    "mdev_type": "i915-GVTg_V5_4",
    "aggregator": 2,
    "pv_mode": "none+ppgtt",
    "software_version": "1.2.0",
}


def gvt(**changes):
    return {**GVT, **changes}


SOURCES = [
    {"id": "s1", "host": "a", "self": gvt()},
    {"id": "s2", "host": "b", "self": gvt()},
    {"id": "s3", "host": "a", "self": gvt(), "migratable": False},
]
TARGETS = [
    {"id": "t1", "host": "b", "self": gvt(software_version="1.2.3")},
    {"id": "t2", "host": "c", "self": gvt(software_version="1.3.0")},
    {"id": "t3", "host": "a", "self": gvt()},
    {"id": "t4", "host": "d", "self": gvt(), "capacity": 0},
    {"id": "t5", "host": "c", "self": gvt(software_version="2.0.0")},
]
# What the policy makes of them: s1 -> t1 (closest, higher patch), t2 (minor +1);
# t3 is on s1's host, t4 has no capacity, t5 is another major.
# s2 -> t3 (identical), t2 (t1 is on s2's host). s3 is not migratable.
EXPECTED = {"s1": ["t1", "t2"], "s2": ["t3", "t2"], "s3": []}


def write_jsonl(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture
def fleet(tmp_path):
    return str(write_jsonl(tmp_path / "sources.jsonl", SOURCES)), str(write_jsonl(tmp_path / "targets.jsonl", TARGETS))


def run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("fastmatch: error: "), err
    assert "Traceback" not in err
    return lines[0]


# -- match -----------------------------------------------------------------------------------
def test_match_json_lines(capsys, fleet):
    status, out, err = run(capsys, "match", *fleet, "--format", "json")
    assert (status, err) == (0, "")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["source"] for r in rows] == ["s1", "s2", "s3"]
    assert {r["source"]: [c["target"] for c in r["candidates"]] for r in rows} == EXPECTED
    for r in rows:
        assert [c["rank"] for c in r["candidates"]] == list(range(1, len(r["candidates"]) + 1))
    # SPEC 7 readable: the parts that decided, never the kernel's int64.
    s1, s2 = rows[0]["candidates"], rows[1]["candidates"]
    part = {"exact": False, "same_type": True, "major_distance": 0}
    assert s1[0]["score"] == {**part, "version": "1.2.3", "minor_distance": 0}  # closest minor, higher patch
    assert s1[1]["score"] == {**part, "version": "1.3.0", "minor_distance": 1}
    assert s2[0]["score"] == {**part, "exact": True, "version": "1.2.0", "minor_distance": 0}  # identical


def test_match_json_scores_stay_exact_past_2_53(capsys, tmp_path):
    """Versions far beyond 2^53: the JSON carries no number a double would round, and the
    ranking follows the true differences."""
    big = 2**62
    sources = write_jsonl(tmp_path / "s.jsonl", [{"id": "s", "self": gvt(software_version=f"{big}.0.0")}])
    targets = write_jsonl(tmp_path / "t.jsonl", [
        {"id": "far", "self": gvt(software_version=f"{big}.{2**60}.1")},
        {"id": "near", "self": gvt(software_version=f"{big}.{2**60 - 1}.20240115")},
    ])
    status, out, err = run(capsys, "match", sources, targets, "--format", "json")
    assert (status, err) == (0, ""), err
    candidates = json.loads(out)["candidates"]  # the default version rule takes a higher minor
    assert [c["target"] for c in candidates] == ["near", "far"]
    assert [c["score"]["minor_distance"] for c in candidates] == [str(2**60 - 1), str(2**60)]
    for number in _json_numbers(out):
        assert abs(number) <= 2**53


def _json_numbers(text: str):
    def walk(value):
        if isinstance(value, bool):
            return
        if isinstance(value, (int, float)):
            yield value
        elif isinstance(value, dict):
            for v in value.values():
                yield from walk(v)
        elif isinstance(value, list):
            for v in value:
                yield from walk(v)

    for line in text.splitlines():
        yield from walk(json.loads(line))


def test_match_csv(capsys, fleet):
    status, out, err = run(capsys, "match", *fleet, "--format", "csv")
    assert (status, err) == (0, "")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["source", "rank", "target", "exact", "same_type", "version", "major_distance", "minor_distance"]
    assert rows[1:] == [
        ["s1", "1", "t1", "false", "true", "1.2.3", "0", "0"],
        ["s1", "2", "t2", "false", "true", "1.3.0", "0", "1"],
        ["s2", "1", "t3", "true", "true", "1.2.0", "0", "0"],
        ["s2", "2", "t2", "false", "true", "1.3.0", "0", "1"],
    ]


def test_match_table(capsys, fleet):
    status, out, err = run(capsys, "match", *fleet, "--format", "table")
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["SOURCE", "RANK", "TARGET", "SCORE"]
    body = [line.split(None, 3) for line in lines[1:]]
    assert [(r[0], r[1], r[2]) for r in body[:4]] == [
        ("s1", "1", "t1"), ("s1", "2", "t2"), ("s2", "1", "t3"), ("s2", "2", "t2")
    ]
    assert body[0][3] == "same type, version 1.2.3 (same major and minor)"
    assert body[1][3] == "same type, version 1.3.0 (same major, 1 minor away)"
    assert body[2][3] == "identical descriptors, version 1.2.0 (same major and minor)"
    assert body[4][:2] == ["s3", "-"] and "(no available target)" in lines[5]
    # aligned: every row puts the target column at the same offset
    assert len({line.index(" t") for line in lines[1:5]}) == 1


def test_table_is_the_default_and_formats_agree(capsys, fleet):
    _, table, _ = run(capsys, "match", *fleet)
    _, as_json, _ = run(capsys, "match", *fleet, "--format", "json")
    _, as_csv, _ = run(capsys, "match", *fleet, "--format", "csv")
    from_json = [
        (r["source"], str(c["rank"]), c["target"], c["score"]["version"])
        for r in map(json.loads, as_json.splitlines())
        for c in r["candidates"]
    ]
    from_csv = [(r[0], r[1], r[2], r[5]) for r in list(csv.reader(io.StringIO(as_csv)))[1:]]
    from_table = [
        tuple(line.split()[:3]) + (line.split("version ")[1].split()[0],)
        for line in table.splitlines()[1:]
        if "(no available target)" not in line
    ]
    assert from_json == from_csv == from_table


def test_top_and_workers(capsys, fleet):
    status, out, _ = run(capsys, "match", *fleet, "--format", "json", "--top", "1", "--workers", "1")
    assert status == 0
    assert [[c["target"] for c in json.loads(line)["candidates"]] for line in out.splitlines()] == [["t1"], ["t3"], []]


def test_policy_option(capsys, fleet, tmp_path):
    policy = tmp_path / "policy.toml"
    policy.write_text("exclude_same_host = false\n")
    status, out, _ = run(capsys, "match", *fleet, "--format", "json", "--policy", policy)
    assert status == 0
    s1 = json.loads(out.splitlines()[0])
    assert [c["target"] for c in s1["candidates"]][0] == "t3"  # identical, and no longer excluded


def test_bad_policy_is_an_error(capsys, fleet, tmp_path):
    policy = tmp_path / "policy.toml"
    policy.write_text('direction = "sideways"\n')
    status, out, err = run(capsys, "match", *fleet, "--policy", policy)
    assert (status, out) == (2, "")
    line = assert_one_error_line(err)
    assert str(policy) in line and "sideways" in line


def test_output_file(capsys, fleet, tmp_path):
    _, expected, _ = run(capsys, "match", *fleet, "--format", "csv")
    output = tmp_path / "out" / "ranked.csv"
    output.parent.mkdir()
    status, out, err = run(capsys, "match", *fleet, "--format", "csv", "-o", output)
    assert (status, out, err) == (0, "", "")
    assert output.read_text() == expected
    assert os.listdir(output.parent) == ["ranked.csv"]  # no temporary file left behind
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(output.stat().st_mode) == 0o666 & ~umask


def test_output_file_replaces_and_keeps_mode(capsys, fleet, tmp_path):
    output = tmp_path / "ranked.json"
    output.write_text("old\n")
    output.chmod(0o640)
    assert run(capsys, "match", *fleet, "--format", "json", "--output", output)[0] == 0
    assert len(output.read_text().splitlines()) == 3
    assert stat.S_IMODE(output.stat().st_mode) == 0o640


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_failed_write_leaves_the_old_file(capsys, fleet, tmp_path, monkeypatch, failure):
    output = tmp_path / "ranked.json"
    output.write_text("old\n")

    def fail(fd):
        raise failure

    monkeypatch.setattr(cli.os, "fsync", fail)
    status, out, err = run(capsys, "match", *fleet, "--format", "json", "-o", output)
    assert output.read_text() == "old\n"
    assert sorted(os.listdir(tmp_path)) == ["ranked.json", "sources.jsonl", "targets.jsonl"]
    if isinstance(failure, OSError):
        assert status == 2
        line = assert_one_error_line(err)
        assert str(output) in line and "No space left on device" in line
    else:
        assert status == 130 and err == "fastmatch: interrupted\n"


def test_output_into_missing_directory(capsys, fleet, tmp_path):
    output = tmp_path / "missing" / "out.csv"
    status, _, err = run(capsys, "match", *fleet, "-o", output)
    assert status == 2
    assert str(output) in assert_one_error_line(err)


# -- explain ---------------------------------------------------------------------------------
def test_explain_compatible_pair(capsys, fleet):
    status, out, err = run(capsys, "explain", *fleet, "s1", "t1")
    assert (status, err) == (0, "")
    assert out.startswith("s1 -> t1: compatible")


@pytest.mark.parametrize(
    "target, words",
    [("t5", ["NOT compatible", "software_version", "2.0.0"]), ("t3", ["NOT compatible", "same host"])],
)
def test_explain_incompatible_pair(capsys, fleet, target, words):
    status, out, _ = run(capsys, "explain", *fleet, "s1", target)
    assert status == 0
    for word in words:
        assert word in out


@pytest.mark.parametrize("prefer", ["closest", "newest"])
def test_explain_reports_the_score_match_reports(capsys, fleet, tmp_path, prefer):
    policy = tmp_path / "policy.toml"
    policy.write_text(f'prefer = "{prefer}"\n')
    _, out, _ = run(capsys, "match", *fleet, "--format", "json", "--policy", policy)
    ranked = {(r["source"], c["target"]): c for r in map(json.loads, out.splitlines()) for c in r["candidates"]}
    for (source, target), candidate in ranked.items():
        _, explained, _ = run(capsys, "explain", *fleet, source, target, "--policy", policy, "--format", "json")
        explained = json.loads(explained)
        assert (explained["score"], explained["rank"]) == (candidate["score"], candidate["rank"])
        _, text, _ = run(capsys, "explain", *fleet, source, target, "--policy", policy)
        assert text == explained["text"] + "\n"
        assert f"rank {candidate['rank']} of the source's" in text


@pytest.mark.parametrize("ids, which", [(("nope", "t1"), 0), (("s1", "nope"), 1)])
def test_explain_unknown_id(capsys, fleet, ids, which):
    status, out, err = run(capsys, "explain", *fleet, *ids)
    assert (status, out) == (2, "")
    line = assert_one_error_line(err)
    assert fleet[which] in line and "'nope'" in line


# -- check -----------------------------------------------------------------------------------
def one(tmp_path, name, record):
    return write_jsonl(tmp_path / name, [record])


def test_check_compatible(capsys, tmp_path):
    source = one(tmp_path, "s.jsonl", SOURCES[0])
    target = one(tmp_path, "t.jsonl", TARGETS[0])
    status, out, _ = run(capsys, "check", source, target)
    assert status == 0
    assert out.startswith("s1 -> t1: compatible")


def test_check_incompatible_prints_the_reasons(capsys, tmp_path):
    source = one(tmp_path, "s.jsonl", SOURCES[0])
    target = one(tmp_path, "t.jsonl", TARGETS[4])
    status, out, _ = run(capsys, "check", source, target)
    assert status == 1
    assert "NOT compatible" in out and "software_version" in out


def test_check_reads_seed_documents(capsys, tmp_path):
    """The upstream thread's format: one device per file, records that list accepted sources."""
    source = tmp_path / "gvt-src.json"
    source.write_text(json.dumps({"self": [{"pciid": "8086591d", "driver": "i915", "gvt-version": "v1",
                                            "mdev_type": "i915-GVTg_V5_4", "aggregator": "2", "pv-mode": "none"}]}))
    target = tmp_path / "gvt-dst.json"
    target.write_text(json.dumps({
        "self": [{"pciid": "8086591d", "driver": "i915", "gvt-version": "v1",
                  "mdev_type": "i915-GVTg_V5_2", "aggregator": "1", "pv-mode": "none"}],
        "compatible": [{"pciid": "8086591d", "driver": "i915", "gvt-version": "v1",
                        "mdev_type": "i915-GVTg_V5_{val1:int:2,4,8}", "aggregator": "{val1}/2"}],
    }))
    assert run(capsys, "check", source, target)[0] == 0
    status, out, _ = run(capsys, "check", target, source)
    assert status == 1 and "mdev_type" in out


def test_check_policy_option(capsys, tmp_path):
    source = one(tmp_path, "s.jsonl", SOURCES[0])
    target = one(tmp_path, "t.jsonl", TARGETS[2])  # same host
    assert run(capsys, "check", source, target)[0] == 1
    policy = tmp_path / "policy.toml"
    policy.write_text("exclude_same_host = false\n")
    assert run(capsys, "check", source, target, "--policy", policy)[0] == 0


def test_check_needs_exactly_one_device(capsys, fleet, tmp_path):
    target = one(tmp_path, "t.jsonl", TARGETS[0])
    status, out, err = run(capsys, "check", fleet[0], target)
    assert (status, out) == (2, "")
    line = assert_one_error_line(err)
    assert fleet[0] in line and "found 3" in line
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert run(capsys, "check", empty, target)[0] == 2


# -- errors ----------------------------------------------------------------------------------
def test_malformed_input_names_file_and_line(capsys, tmp_path):
    sources = tmp_path / "sources.jsonl"
    sources.write_text(json.dumps(SOURCES[0]) + "\n" + json.dumps(SOURCES[1]) + "\n{not json\n")
    targets = write_jsonl(tmp_path / "targets.jsonl", TARGETS)
    status, out, err = run(capsys, "match", sources, targets)
    assert (status, out) == (2, "")
    assert assert_one_error_line(err).startswith(f"fastmatch: error: {sources}:3: ")


def test_invalid_field_names_file_line_record_and_field(capsys, tmp_path):
    bad = {"id": "t9", "self": gvt(software_version="v2+")}
    targets = write_jsonl(tmp_path / "targets.jsonl", [TARGETS[0], bad])
    sources = write_jsonl(tmp_path / "sources.jsonl", SOURCES)
    status, _, err = run(capsys, "match", sources, targets)
    assert status == 2
    line = assert_one_error_line(err)
    assert f"{targets}:2" in line and "t9" in line and "software_version" in line and "v2+" in line


def test_missing_input_file(capsys, tmp_path, fleet):
    missing = tmp_path / "nope.jsonl"
    status, _, err = run(capsys, "match", missing, fleet[1])
    assert status == 2
    assert str(missing) in assert_one_error_line(err)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["match", "only-one-file"],
        ["match", "a", "b", "--format", "xml"],
        ["match", "a", "b", "--top", "0"],
        ["match", "a", "b", "--top", "many"],
        ["match", "a", "b", "--workers", "-2"],
        ["explain", "a", "b", "s1"],
        ["check", "a"],
        ["demo", "--top", "-1"],
    ],
)
def test_usage_errors_exit_2(capsys, argv):
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == ""
    assert "error:" in err and "Traceback" not in err


def test_help_and_version(capsys):
    status, out, _ = run(capsys, "--help")
    assert status == 0 and "match" in out and "explain" in out and "check" in out and "demo" in out
    status, out, _ = run(capsys, "--version")
    assert (status, out.strip()) == (0, f"fastmatch {fastmatch.__version__}")


def test_interrupt_exits_130(capsys, fleet, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "match", interrupted)
    status, out, err = run(capsys, "match", *fleet)
    assert (status, out, err) == (130, "", "fastmatch: interrupted\n")


# -- demo ------------------------------------------------------------------------------------
def test_demo(capsys):
    status, out, err = run(capsys, "demo")
    assert (status, err) == (0, "")
    for heading in (
        "sources", "targets", "compatible pairs:", "sources with no available target:",
        "Ranked candidates (top 3)", "Why pairs fail",
    ):
        assert heading in out
    for reason in ("software_version", "OPAQUE", "NO_RECORD", "NOT_MIGRATABLE", "SAME_HOST"):
        assert reason in out


def test_demo_top(capsys):
    status, out, _ = run(capsys, "demo", "--top", "1")
    assert status == 0
    assert "Ranked candidates (top 1)" in out
    assert "    2. " not in out


def test_demo_counts_agree_with_the_api():
    sources, targets = fastmatch.load(DEMO_SOURCES), fastmatch.load(DEMO_TARGETS)
    result = fastmatch.match(sources, targets)
    out = io.StringIO()
    cli.print_demo(result, 3, out)
    text = out.getvalue()
    indices, _ = result.top_k(1)
    stranded = int((indices[:, 0] < 0).sum())
    n, m = result.shape
    assert f"compatible pairs: {int(result.compatible.sum())} of {n * m}" in text
    assert f"sources with no available target: {stranded} of {n}" in text


def test_demo_fleet_is_what_the_readme_promises():
    sources, targets = fastmatch.load(DEMO_SOURCES), fastmatch.load(DEMO_TARGETS)
    assert 30 <= len(sources) <= 60 and 40 <= len(targets) <= 80
    records = sources.to_records() + targets.to_records()
    apis = {r["self"].get("device_api") for r in records}
    assert {"vfio-pci", "vfio-ccw"} <= apis
    drivers = {r["self"].get("vendor_driver") for r in records}
    assert {"i915", "nvidia"} <= drivers
    assert any("{val1" in json.dumps(r.get("compatible", [])) for r in records)
    assert any(r.get("capacity") == 0 for r in targets.to_records())
    assert any(r.get("migratable") is False for r in records)
    assert len({r.get("migration_version") for r in records} - {None}) >= 2
    result = fastmatch.match(sources, targets)
    indices, _ = result.top_k(1)
    stranded = int((indices[:, 0] < 0).sum())
    assert 0 < stranded < len(sources) // 2


# -- a real process --------------------------------------------------------------------------
def _subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    package_root = str(Path(fastmatch.__file__).parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    return env


def test_python_m_fastmatch_error_has_no_traceback(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "self": {}}\n{"id": "y", "self": {"software_version": "abc"}}\n')
    proc = subprocess.run(
        [sys.executable, "-m", "fastmatch", "match", str(bad), str(bad)],
        capture_output=True, text=True, env=_subprocess_env(), timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    line = assert_one_error_line(proc.stderr)
    assert f"{bad}:2" in line


def test_python_m_fastmatch_demo():
    proc = subprocess.run(
        [sys.executable, "-m", "fastmatch", "demo"],
        capture_output=True, text=True, env=_subprocess_env(), timeout=300,
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    assert "compatible pairs:" in proc.stdout


def test_warnings_are_one_line(capsys, fleet, monkeypatch):
    real_match = cli.match

    def warning_match(*args, **kwargs):
        import warnings

        warnings.warn("fastmatch: too many classes\nfor the kernel; using the reference", RuntimeWarning)
        return real_match(*args, **kwargs)

    monkeypatch.setattr(cli, "match", warning_match)
    status, out, err = run(capsys, "match", *fleet, "--format", "json")
    assert status == 0 and len(out.splitlines()) == 3
    assert err == "fastmatch: warning: too many classes for the kernel; using the reference\n"


def test_sources_sharing_candidates_keep_their_own_parts(capsys, tmp_path):
    """Two sources ranking the same target with the same version distance, one of them identical
    to it: each line shows its own parts (rankings are shared only when the scores agree)."""
    sources = write_jsonl(tmp_path / "s.jsonl", [
        {"id": "other", "host": "a", "self": gvt(pv_mode="ppgtt")},
        {"id": "twin", "host": "a", "self": gvt()},
    ])
    targets = write_jsonl(tmp_path / "t.jsonl", [{"id": "t", "host": "b", "self": gvt()}])
    status, out, err = run(capsys, "match", sources, targets, "--format", "json")
    assert (status, err) == (0, "")
    exact = {row["source"]: [c["score"]["exact"] for c in row["candidates"]] for row in map(json.loads, out.splitlines())}
    assert exact == {"other": [False], "twin": [True]}
