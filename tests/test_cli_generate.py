"""``fastmatch generate``: small fleets have matches, and --distinct has a default."""

from __future__ import annotations

import json

import pytest

import fastmatch
from fastmatch.generate import DEFAULT_MIN_DISTINCT, default_distinct, write_fleet
from test_cli import run


def available_pairs(sources, targets) -> int:
    return int(fastmatch.match(fastmatch.load(sources), fastmatch.load(targets)).counts().sum())


@pytest.mark.parametrize("seed", range(12))
def test_a_small_fleet_has_available_pairs(tmp_path, seed):
    # Three or so hosts a side: the matches must come from the twin host of each source's
    # host, which has its hardware, in the standard setup both sides share.
    assert available_pairs(*write_fleet(tmp_path, 20, 30, 10, seed)) > 0


def test_generate_small_fleet_on_the_command_line(capsys, tmp_path):
    status, out, err = run(capsys, "generate", "--sources", 20, "--targets", 30, "--distinct", 10, "-o", tmp_path)
    assert (status, err) == (0, "")
    sources, targets = tmp_path / "sources.jsonl", tmp_path / "targets.jsonl"
    assert out.splitlines() == [str(sources), str(targets)]
    status, out, _ = run(capsys, "match", sources, targets, "--format", "json")
    assert status == 0
    assert sum(len(json.loads(line)["candidates"]) > 0 for line in out.splitlines()) > 0


def test_the_standard_setup_of_a_hardware_is_the_same_self_on_both_sides(tmp_path):
    sources, targets = (fastmatch.load(p) for p in write_fleet(tmp_path, 2000, 2000, 40, seed=5))
    source_selves = {tuple(sorted(d.raw_self.items())) for d in sources.descriptors}
    target_selves = {tuple(sorted(d.raw_self.items())) for d in targets.descriptors}
    shared = source_selves & target_selves
    device_types = {dict(s)["mdev_type"].split("-")[0] for s in shared}
    assert len(shared) >= 5 and {"i915", "nvidia", "vfio_ccw"} <= device_types


def test_distinct_defaults_to_one_per_hundred_devices_and_at_least_16(capsys, tmp_path):
    assert default_distinct(20, 30) == DEFAULT_MIN_DISTINCT == 16
    assert default_distinct(100_000, 250_000) == 2500
    status, _, err = run(capsys, "generate", "--sources", 3000, "--targets", 2000, "-o", tmp_path / "default")
    assert (status, err) == (0, "")
    run(capsys, "generate", "--sources", 3000, "--targets", 2000, "--distinct", 30, "-o", tmp_path / "thirty")
    for name in ("sources.jsonl", "targets.jsonl"):
        assert (tmp_path / "default" / name).read_bytes() == (tmp_path / "thirty" / name).read_bytes()
    assert len(fastmatch.load(tmp_path / "default" / "sources.jsonl").descriptors) <= 30
