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
