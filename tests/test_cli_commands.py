"""The command line's listing commands (``reasons``, ``policy``), ``check --format json`` and
``match --summary``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import fastmatch
from fastmatch import Policy
from test_cli import SOURCES, TARGETS, assert_one_error_line, gvt, run, write_jsonl

CUSTOM_POLICY = """
prefer = "newest"
exclude_same_host = false
opaque = "ignore"
score_type = ""
[attributes]
pv_mode = { type = "set", rule = "ignore" }
"frame buffer" = { type = "int", rule = "ge", aliases = ["fb", "frame-buffer"] }
"""


@pytest.fixture
def custom_policy(tmp_path) -> Path:
    path = tmp_path / "custom.toml"
    path.write_text(CUSTOM_POLICY)
    return path


# -- reasons ---------------------------------------------------------------------------------
def reasons_json(capsys, *argv) -> list[dict]:
    status, out, err = run(capsys, "reasons", "--format", "json", *argv)
    assert (status, err) == (0, "")
    return json.loads(out)


def test_reasons_bits_are_the_bits_a_match_sets(capsys, tmp_path):
    entries = {e["name"]: e for e in reasons_json(capsys)}
    sources = [{"id": "s", "host": "a", "self": gvt(), "migration_version": "x"}]
    targets = [
        {"id": "t-pv", "host": "b", "self": gvt(pv_mode="none"), "migration_version": "x"},
        {"id": "t-version", "host": "b", "self": gvt(software_version="2.0.0"), "migration_version": "x"},
        {"id": "t-opaque", "host": "b", "self": gvt(), "migration_version": "y"},
        {"id": "t-host", "host": "a", "self": gvt(), "migration_version": "x"},
        {"id": "t-records", "host": "b", "self": gvt(), "compatible": [{"mdev_type": "other"}], "migration_version": "x"},
        {"id": "t-frozen", "host": "b", "self": gvt(), "migratable": False, "migration_version": "x"},
        {"id": "t-unknown", "host": "b", "self": gvt(colour="red"), "migration_version": "x"},
    ]
    result = fastmatch.match(sources, targets)
    masks = result.reasons[0]
    expected = ["pv_mode", "software_version", "OPAQUE", "SAME_HOST", "NO_RECORD", "NOT_MIGRATABLE"]
    for j, name in enumerate(expected):
        assert int(masks[j]) == 1 << entries[name]["bit"] == int(entries[name]["mask"], 16), name
    undeclared = entries["(undeclared attributes)"]
    assert int(masks[6]) == 1 << undeclared["bit"]  # the first undeclared attribute takes the first free bit
    assert (undeclared["bit"], undeclared["last_bit"]) == (len(Policy.default().attributes), 58)
    assert [e["name"] for e in reasons_json(capsys) if e["kind"] == "attribute"] == result.attributes[:7]
    assert entries["SAME_DEVICE"]["mask"] == "0x8000000000000000"  # text: exact in any JSON tool


def test_reasons_of_a_policy_file(capsys, custom_policy):
    entries = reasons_json(capsys, "--policy", custom_policy)
    by_name = {e["name"]: e for e in entries}
    assert by_name["frame buffer"] == {
        "bit": 7, "mask": "0x80", "name": "frame buffer", "kind": "attribute", "type": "int", "rule": "ge",
        "meaning": "the ge rule fails (int)",
    }
    assert by_name["pv_mode"]["meaning"] == "never: the ignore rule always passes (set)"
    assert by_name["SAME_HOST"]["meaning"] == "never under this policy (exclude_same_host = false)"
    assert by_name["OPAQUE"]["meaning"] == 'never under this policy (opaque = "ignore")'
    assert by_name["(undeclared attributes)"]["bit"] == 8


def test_reasons_table(capsys):
    status, out, err = run(capsys, "reasons")
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["BIT", "NAME", "SET", "WHEN"]
    assert lines[1].split()[:2] == ["0", "device_api"]
    assert lines[8].split()[:2] == ["7-58", "(undeclared"]
    assert [line.split()[:2] for line in lines[-5:]] == [
        ["59", "NO_RECORD"], ["60", "OPAQUE"], ["61", "NOT_MIGRATABLE"], ["62", "SAME_HOST"], ["63", "SAME_DEVICE"],
    ]


def test_reasons_of_a_bad_policy_is_one_error_line(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('prefer = "oldest"\n')
    status, out, err = run(capsys, "reasons", "--policy", bad)
    assert (status, out) == (2, "")
    assert assert_one_error_line(err) == f"fastmatch: error: {bad}: field 'prefer': 'oldest' is not one of closest, newest"


# -- policy ----------------------------------------------------------------------------------
def test_policy_default_reads_back_as_the_default_policy(capsys, tmp_path):
    status, out, err = run(capsys, "policy", "--default")
    assert (status, err) == (0, "")
    written = tmp_path / "default.toml"
    written.write_text(out)
    assert Policy.from_toml(written) == Policy.default()
    assert 'direction = "target-accepts"' in out.splitlines()
    # And the file, given back, makes match give what the built-in policy gives.
    sources, targets = write_jsonl(tmp_path / "s.jsonl", SOURCES), write_jsonl(tmp_path / "t.jsonl", TARGETS)
    assert run(capsys, "match", sources, targets, "--policy", written) == run(capsys, "match", sources, targets)


def test_policy_of_a_file_is_complete_and_reads_back_equal(capsys, tmp_path, custom_policy):
    status, out, err = run(capsys, "policy", "--policy", custom_policy)
    assert (status, err) == (0, "")
    written = tmp_path / "again.toml"
    written.write_text(out)
    again = Policy.from_toml(written)
    assert again == Policy.from_toml(custom_policy)
    assert again.attribute("frame buffer").aliases == ("fb", "frame-buffer")
    assert again != Policy.default()


def test_policy_needs_default_or_a_file(capsys):
    status, out, err = run(capsys, "policy")
    assert (status, out) == (2, "")
    assert "one of the arguments --default --policy is required" in assert_one_error_line(err)


# -- match --summary -------------------------------------------------------------------------
def dense_summary(result: fastmatch.MatchResult) -> dict:
    """The summary counted over the dense n x m arrays, the plain way."""
    from fastmatch.reasons import reason_names

    reasons = result.reasons
    counts: dict[str, int] = {}
    masks, pairs = np.unique(reasons[reasons != 0], return_counts=True)
    for mask, count in zip(masks.tolist(), pairs.tolist()):
        for name in reason_names(mask, result.attributes):
            counts[name] = counts.get(name, 0) + count
    compatible = result.compatible
    available = compatible & (result.targets.capacities > 0)[None, :]
    n, m = result.shape
    return {
        "sources": {"devices": n, "classes": len(set(result.source_class.tolist()))},
        "targets": {"devices": m, "classes": len(set(result.target_class.tolist()))},
        "pairs": n * m,
        "compatible_pairs": int(compatible.sum()),
        "available_pairs": int(available.sum()),
        "incompatible_pairs": int((reasons != 0).sum()),
        "stranded_sources": int((~available.any(axis=1)).sum()),
        "reasons": counts,
    }


def fleets(tmp_path: Path):
    """Fleets with every device rule at work: shared hosts, devices that are sources and
    targets at once, capacity 0, several classes per side."""
    from fastmatch.generate import write_fleet

    demo = Path(fastmatch.__file__).parent / "data"
    demo_sources = fastmatch.load(demo / "demo_sources.jsonl")
    demo_targets = fastmatch.load(demo / "demo_targets.jsonl")
    yield "demo", demo_sources, demo_targets
    both = fastmatch.DeviceSet.from_records(demo_sources.to_records() + demo_targets.to_records()[::3])
    yield "sources that are targets too", both, demo_targets
    generated = [fastmatch.load(p) for p in write_fleet(tmp_path / "generated", 150, 200, 40, seed=3)]
    yield "generated", *generated
    yield "tests' fleet", fastmatch.DeviceSet.from_records(SOURCES), fastmatch.DeviceSet.from_records(TARGETS)


@pytest.mark.parametrize("blocking", ["always", "never"])
@pytest.mark.parametrize("implementation", ["native", "python"])
@pytest.mark.parametrize("exclude_same_host", [True, False])
def test_summary_equals_the_dense_count(monkeypatch, tmp_path, blocking, implementation, exclude_same_host):
    from fastmatch.summary import summarise

    monkeypatch.setenv("FASTMATCH_BLOCKING", blocking)
    monkeypatch.setenv("FASTMATCH_IMPLEMENTATION", implementation)
    policy = Policy.from_dict({"exclude_same_host": exclude_same_host})
    for name, sources, targets in fleets(tmp_path / implementation):
        result = fastmatch.match(sources, targets, policy)
        got = summarise(result).json()
        expected = dense_summary(result)
        assert got == expected, name
        assert list(got["reasons"].values()) == sorted(got["reasons"].values(), reverse=True)
    assert expected["reasons"] and expected["stranded_sources"]  # the tests' fleet has both (s3)


def test_match_summary_to_stderr_and_json_file(capsys, tmp_path):
    sources, targets = write_jsonl(tmp_path / "s.jsonl", SOURCES), write_jsonl(tmp_path / "t.jsonl", TARGETS)
    summary_file = tmp_path / "summary.json"
    status, out, err = run(capsys, "match", sources, targets, "--summary", "--summary-json", summary_file)
    assert status == 0
    assert out == run(capsys, "match", sources, targets)[1]  # the results are what they are without it
    result = fastmatch.match(fastmatch.load(sources), fastmatch.load(targets))
    assert json.loads(summary_file.read_text()) == dense_summary(result)
    lines = err.splitlines()
    assert all(line.startswith("fastmatch: summary: ") for line in lines)
    text = [line.removeprefix("fastmatch: summary: ") for line in lines]
    assert text[:5] == [
        "sources           3 devices, 2 distinct descriptors",
        "targets           5 devices, 4 distinct descriptors",
        "compatible pairs  6 of 15 (40.0%), 4 of them to targets with capacity",
        "stranded sources  1 of 3 (no available target)",
        "why pairs fail    9 incompatible pairs; one pair can fail for several reasons",
    ]
    assert [line.split()[0] for line in text[5:]] == list(json.loads(summary_file.read_text())["reasons"])


def test_summary_json_alone_writes_nothing_to_stderr(capsys, tmp_path):
    sources, targets = write_jsonl(tmp_path / "s.jsonl", SOURCES), write_jsonl(tmp_path / "t.jsonl", TARGETS)
    status, _, err = run(capsys, "match", sources, targets, "--summary-json", tmp_path / "summary.json", "-q")
    assert (status, err) == (0, "")
    assert json.loads((tmp_path / "summary.json").read_text())["stranded_sources"] == 1


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--summary-json", "-"], "--summary-json needs a file name ('-' would mix it into the results); use --summary for stderr"),
        (["--summary-json", "{out}", "-o", "{out}"], "--summary-json and -o name one file ({out}); give them different paths"),
    ],
)
def test_summary_json_file_clashes_are_one_error_line(capsys, tmp_path, extra, message):
    sources = write_jsonl(tmp_path / "s.jsonl", SOURCES)
    out = tmp_path / "out"
    status, stdout, err = run(capsys, "match", sources, sources, *[a.format(out=out) for a in extra])
    assert (status, stdout) == (2, "")
    assert assert_one_error_line(err) == "fastmatch: error: " + message.format(out=out)
    assert not out.exists()


def test_summary_counts_above_2_53_are_written_as_text():
    from fastmatch.summary import Summary

    big = Summary(2**27, 2**27, 1, 1, 2**54, 2**54, 0, {"mdev_type": 3})
    assert big.json()["pairs"] == str(2**54) and big.json()["compatible_pairs"] == str(2**54)
    assert big.json()["reasons"] == {"mdev_type": 3} and big.json()["incompatible_pairs"] == 0


# -- check --format json ---------------------------------------------------------------------
def test_check_json_says_what_the_text_says_with_the_same_exit_status(capsys, tmp_path):
    older = write_jsonl(tmp_path / "older.jsonl", [{"id": "old", "host": "a", "self": gvt(software_version="1.2.0")}])
    newer = write_jsonl(tmp_path / "newer.jsonl", [{"id": "new", "host": "b", "self": gvt(software_version="1.3.7")}])
    for source, target, expected_status in ((older, newer, 0), (newer, older, 1)):
        status, out, err = run(capsys, "check", source, target, "--format", "json")
        assert (status, err) == (expected_status, "")
        assert len(out.splitlines()) == 1
        shown = json.loads(out)
        text_status, text, _ = run(capsys, "check", source, target)
        assert text_status == status and shown["text"] + "\n" == text
        if status == 0:
            assert shown == {
                "source": "old", "target": "new", "compatible": True, "reasons": [],
                "score": {"exact": False, "same_type": True, "version": "1.3.7", "major_distance": 0, "minor_distance": 1},
                "text": shown["text"],
            }
        else:
            assert (shown["source"], shown["target"], shown["compatible"]) == ("new", "old", False)
            assert (shown["reasons"], shown["score"]) == (["software_version"], None)


def test_check_json_of_a_bad_input_is_one_error_line(capsys, tmp_path):
    two = write_jsonl(tmp_path / "two.jsonl", SOURCES[:2])
    status, out, err = run(capsys, "check", two, two, "--format", "json")
    assert (status, out) == (2, "")
    assert assert_one_error_line(err) == f"fastmatch: error: {two}: expected exactly one device, found 2"


def test_a_summary_file_that_cannot_be_written_leaves_no_results(capsys, tmp_path):
    sources = write_jsonl(tmp_path / "s.jsonl", SOURCES)
    out, summary = tmp_path / "out.csv", tmp_path / "no-such-directory" / "summary.json"
    status, stdout, err = run(capsys, "match", sources, sources, "-o", out, "--summary-json", summary)
    assert (status, stdout) == (2, "")
    assert assert_one_error_line(err).startswith(f"fastmatch: error: {summary}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.jsonl"]  # no results, no temporary file
