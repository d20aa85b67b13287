"""Generating, loading and interning a fleet (at most 2,000 distinct descriptors per side);
interning all-distinct fleets; a prepared index interning a request's sources; the parse
floor the JSON Lines loader is held to, in the same run; Parquet fleets; writing top-5
JSON Lines, CSV and Parquet (the ranking they are written from, the formatting alone, and
formatting and writing to a file, fsync included).

The parse floor (issue 13) is msgspec decoding the file into the fast path's line structs
(``fleet_lines._Line``), the file read with one ``read()``: ``floor`` decodes it in one
``decode_lines`` call, ``floor per line`` line by line as the loader used to (the issue's
measure). ``test_load_against_floor`` times both and ``fastmatch.load`` in one test,
alternating, and records ``floor_ratio`` (load / floor) in ``extra_info``.

The fleet has ``FASTMATCH_BENCH_FLEET`` devices per side (100,000 quick,
1,000,000 full). ``extra_info`` holds ``devices`` and ``devices_per_second``;
the distinct interning holds ``descriptors`` (both sides) and ``descriptors_per_second``
(issue 8: at least 200,000, cold: sets no match has seen), the requests ``sources``.
"""

from __future__ import annotations

import gc
import time

import numpy as np
import pytest

import fastmatch
import fastmatch.generate as generate
import support

N = support.sizes().fleet
K = support.FLEET_DISTINCT
DISTINCT = (10_000, 30_000, 100_000)  # descriptors per side, all distinct
REQUEST_SOURCES = (1, 10, 100)


def _rate(benchmark, devices):
    benchmark.extra_info["devices"] = devices
    if benchmark.stats:
        benchmark.extra_info["devices_per_second"] = devices / benchmark.stats.stats.median


def _rounds():
    return 3 if N <= 200_000 else 1


def test_generate(benchmark, tmp_path):
    """``fastmatch generate --sources N --targets N --distinct 2000``: both files written."""
    benchmark.group = f"fleet {N:,} x {N:,}: generate, load, intern"
    benchmark.extra_info.update({"implementation": "generate", "size": str(N)})
    benchmark.pedantic(generate.write_fleet, args=(tmp_path, N, N, K, support.SEED), rounds=_rounds(), iterations=1)
    _rate(benchmark, 2 * N)


@pytest.mark.parametrize("side", ["sources", "targets"])
def test_load(benchmark, side):
    """``fastmatch.load`` of one side's JSON Lines."""
    paths = dict(zip(("sources", "targets"), support.fleet_files(N, N, K)))
    benchmark.group = f"fleet {N:,} x {N:,}: generate, load, intern"
    benchmark.extra_info.update({"implementation": f"load {side}", "size": str(N), "bytes": paths[side].stat().st_size})
    devices = benchmark.pedantic(fastmatch.load, args=(paths[side],), rounds=_rounds(), iterations=1)
    assert len(devices) == N
    _rate(benchmark, N)


def test_intern(benchmark):
    """Vocabularies, classes and the kernel's arrays, from two loaded device sets that no match
    has seen (a set's first match: see ``test_intern_distinct``)."""
    from fastmatch.intern import intern

    s, t = support.fleet_files(N, N, K)
    sources, targets = fastmatch.load(s), fastmatch.load(t)
    benchmark.group = f"fleet {N:,} x {N:,}: generate, load, intern"
    benchmark.extra_info.update({"implementation": "intern", "size": str(N)})
    policy = fastmatch.Policy.default()

    def unseen():  # pedantic's setup, before each round
        return (_unseen(sources), _unseen(targets), policy), {}

    interned = benchmark.pedantic(intern, setup=unseen, rounds=_rounds(), iterations=1)
    benchmark.extra_info["classes"] = [interned.sources.n_classes, interned.targets.n_classes]
    assert interned.sources.n_classes <= K and interned.targets.n_classes <= K
    _rate(benchmark, 2 * N)


def _unseen(devices):
    """The same devices (the same loaded descriptors) in a set that no match has seen: nothing
    interning keeps on a set (``DeviceSet.interning``) is there yet."""
    d = devices
    return fastmatch.DeviceSet(d.policy, d.ids, d.hosts, d.vms, d.capacities, d.descriptor_of, d.descriptors)


@pytest.mark.parametrize("prepared", [False, True], ids=["cold", "prepared"])
@pytest.mark.parametrize("n", DISTINCT)
def test_intern_distinct(benchmark, n, prepared):
    """``intern`` of two all-distinct fleets (``fastmatch generate --sources n --targets n
    --distinct n``), from two loaded device sets: every descriptor its own class.

    ``cold``: sets no match has seen (new ``DeviceSet`` objects over the loaded devices, made
    before each round, untimed), so each round finds what each set holds on its own (its
    values numbered, its classes) and then joins them: what a set's first match pays (issue 8:
    at least 200,000 descriptors a second). ``prepared``: the same two sets every round, as
    every later match of them: the round joins the two sides' vocabularies and codes the classes."""
    from fastmatch.intern import intern

    s, t = support.fleet_files(n, n, n)
    sources, targets = fastmatch.load(s), fastmatch.load(t)
    policy = fastmatch.Policy.default()
    label = "prepared" if prepared else "cold"
    benchmark.group = "intern all-distinct fleets"
    benchmark.extra_info.update({"implementation": f"intern distinct, {label}", "size": str(n), "descriptors": 2 * n})
    if prepared:
        intern(sources, targets, policy)
        interned = benchmark.pedantic(intern, args=(sources, targets, policy), rounds=5, iterations=1)
    else:

        def unseen():  # pedantic's setup, before each round
            return (_unseen(sources), _unseen(targets), policy), {}

        interned = benchmark.pedantic(intern, setup=unseen, rounds=5, iterations=1)
    assert interned.sources.n_classes == n and interned.targets.n_classes == n
    if benchmark.stats:
        stats = benchmark.stats.stats
        benchmark.extra_info["descriptors_per_second"] = 2 * n / stats.median
        benchmark.extra_info["descriptors_per_second_best"] = 2 * n / stats.min


@pytest.mark.parametrize("k", REQUEST_SOURCES)
def test_intern_request(benchmark, k):
    """``PreparedTargets.with_sources``, a TargetIndex's per-request interning: the first k
    sources of the fleet against its prepared targets (N devices, 2,000 distinct)."""
    from fastmatch.intern import PreparedTargets

    s, t = support.fleet_files(N, N, K)
    policy = fastmatch.Policy.default()
    prepared = PreparedTargets(fastmatch.load(t), policy)
    sources = fastmatch.DeviceSet.from_records(fastmatch.load(s).to_records()[:k], policy)
    benchmark.group = f"intern a request against {N:,} prepared targets"
    benchmark.extra_info.update({"implementation": "with_sources", "size": str(k), "sources": k})
    interned = benchmark(prepared.with_sources, sources)
    assert interned.sources.class_of.shape == (k,)


def _floor(path, per_line: bool = False):
    from fastmatch.formats.fleet_lines import _DECODER

    with open(path, "rb") as handle:
        data = handle.read()
    if per_line:
        return [_DECODER.decode(line) for line in data.split(b"\n") if line]
    return _DECODER.decode_lines(data)


@pytest.mark.parametrize("per_line", [False, True], ids=["floor", "floor per line"])
@pytest.mark.parametrize("side", ["sources", "targets"])
def test_parse_floor(benchmark, side, per_line):
    """msgspec decoding one side's JSON Lines into the line structs, cyclic GC off."""
    paths = dict(zip(("sources", "targets"), support.fleet_files(N, N, K)))
    benchmark.group = f"fleet {N:,}: load against the parse floor"
    benchmark.extra_info.update({"implementation": f"{'floor per line' if per_line else 'floor'} {side}", "size": str(N)})
    gc.disable()
    try:
        lines = benchmark.pedantic(_floor, args=(paths[side], per_line), rounds=_rounds(), iterations=1)
    finally:
        gc.enable()
    assert len(lines) == N
    _rate(benchmark, N)


@pytest.mark.parametrize("side", ["sources", "targets"])
def test_load_against_floor(benchmark, side):
    """``fastmatch.load``, with the floor (one ``decode_lines``) and the per-line floor timed
    before each of its rounds: ``floor_ratio`` and ``floor_per_line_ratio`` (medians).

    ``floor_cpu_ratio`` is the same ratio in CPU seconds of this process (``process_time``),
    steadier than wall time on a machine shared with other work."""
    path = dict(zip(("sources", "targets"), support.fleet_files(N, N, K)))[side]
    floors: dict[bool, list[float]] = {False: [], True: []}
    cpu: dict[str, list[float]] = {"floor": [], "load": []}

    def floors_first():  # pedantic's setup: run before each timed round, not timed
        for per_line in floors:
            gc.disable()
            start, start_cpu = time.perf_counter(), time.process_time()
            lines = _floor(path, per_line)
            floors[per_line].append(time.perf_counter() - start)
            if not per_line:
                cpu["floor"].append(time.process_time() - start_cpu)
            del lines
            gc.enable()

    def load(path):
        start_cpu = time.process_time()
        devices = fastmatch.load(path)
        cpu["load"].append(time.process_time() - start_cpu)
        return devices

    benchmark.group = f"fleet {N:,}: load against the parse floor"
    benchmark.extra_info.update({"implementation": f"load {side} (floors before each round)", "size": str(N)})
    devices = benchmark.pedantic(load, args=(path,), setup=floors_first, rounds=max(_rounds(), 3), iterations=1)
    assert len(devices) == N
    if benchmark.stats:
        median_load = benchmark.stats.stats.median
        for per_line, key in ((False, "floor"), (True, "floor_per_line")):
            benchmark.extra_info[f"{key}_seconds"] = float(np.median(floors[per_line]))
            benchmark.extra_info[f"{key}_ratio"] = median_load / float(np.median(floors[per_line]))
        benchmark.extra_info["floor_cpu_seconds"] = float(np.median(cpu["floor"]))
        benchmark.extra_info["load_cpu_seconds"] = float(np.median(cpu["load"]))
        benchmark.extra_info["floor_cpu_ratio"] = float(np.median(cpu["load"]) / np.median(cpu["floor"]))


@pytest.fixture(scope="module")
def parquet_fleet(tmp_path_factory):
    """The fleet's two sides as Parquet fleets (``fastmatch convert``)."""
    from fastmatch.formats.columnar import fleet_table, parquet_bytes

    directory = tmp_path_factory.mktemp("parquet")
    paths = {}
    for side, path in zip(("sources", "targets"), support.fleet_files(N, N, K)):
        paths[side] = directory / f"{side}.parquet"
        paths[side].write_bytes(parquet_bytes(fleet_table(fastmatch.load(path))))
    return paths


@pytest.mark.parametrize("side", ["sources", "targets"])
def test_load_parquet(benchmark, side, parquet_fleet):
    """``fastmatch.load`` of one side as a Parquet fleet (self a struct, compatible JSON text)."""
    benchmark.group = f"fleet {N:,}: Parquet"
    benchmark.extra_info.update({"implementation": f"load parquet {side}", "size": str(N), "bytes": parquet_fleet[side].stat().st_size})
    devices = benchmark.pedantic(fastmatch.load, args=(parquet_fleet[side],), rounds=_rounds(), iterations=1)
    assert len(devices) == N
    _rate(benchmark, N)


@pytest.fixture(scope="module")
def fleet_match():
    """The fleet's match result (each output runs the kernel again)."""
    s, t = support.fleet_files(N, N, K)
    return fastmatch.match(fastmatch.load(s), fastmatch.load(t))


@pytest.fixture(scope="module")
def top5(fleet_match):
    """The fleet's top-5 ranking, as ``match`` writes it."""
    from fastmatch.cli import Ranking

    return Ranking.of(fleet_match, 5)


def test_write_top5_ranking(benchmark, fleet_match):
    """``cli.Ranking.of``: top_k(5), the sources sharing a ranking, the distinct rankings'
    score parts: what every format writes from."""
    from fastmatch.cli import Ranking

    benchmark.group = f"fleet {N:,}: write top-5"
    benchmark.extra_info.update({"implementation": "Ranking.of", "size": str(N)})
    ranking = benchmark.pedantic(Ranking.of, args=(fleet_match, 5), rounds=_rounds(), iterations=1)
    benchmark.extra_info["rankings"] = len(ranking)
    _rate(benchmark, N)


def _timed_cpu(benchmark, run):
    """``run`` benchmarked, with the median CPU seconds of its rounds (``process_time``: every
    thread of this process, user and system) as ``cpu_seconds``: on a shared machine the
    steadier figure."""
    cpu: list[float] = []

    def timed():
        start = time.process_time()
        result = run()
        cpu.append(time.process_time() - start)
        return result

    result = benchmark.pedantic(timed, rounds=_rounds(), iterations=1)
    benchmark.extra_info["cpu_seconds"] = float(np.median(cpu))
    return result


@pytest.mark.parametrize("output", ["json", "csv"])
def test_write_top5_formatting_only(benchmark, output, top5):
    """The formatter's chunks made and dropped: the formatting alone; what the file system
    adds (the page cache, fsync, the disk) is the difference from ``test_write_top5``."""
    from fastmatch import cli

    benchmark.group = f"fleet {N:,}: write top-5"
    benchmark.extra_info.update({"implementation": f"format {output}", "size": str(N)})
    size = _timed_cpu(benchmark, lambda: sum(map(len, cli._FORMATTERS[output](top5))))
    benchmark.extra_info["bytes"] = size
    _rate(benchmark, N)


@pytest.mark.parametrize("output", ["json", "csv", "parquet"])
def test_write_top5(benchmark, output, top5, tmp_path):
    """Formatting and writing the N sources' top-5 candidates, as ``match --format F -o FILE``
    does (to a file in the temporary directory, synced before its rename)."""
    from fastmatch import cli

    def write():
        if output == "parquet":
            cli._write_parquet(str(tmp_path / "out.parquet"), cli._parquet_candidates(top5), None)
        else:
            cli._write_results(str(tmp_path / f"out.{output}"), cli._FORMATTERS[output](top5), None, binary=True)

    benchmark.group = f"fleet {N:,}: write top-5"
    benchmark.extra_info.update({"implementation": f"write {output}", "size": str(N)})
    _timed_cpu(benchmark, write)
    benchmark.extra_info["bytes"] = (tmp_path / f"out.{output}").stat().st_size
    _rate(benchmark, N)


def test_write_top5_disk_floor(benchmark, top5, tmp_path):
    """As many bytes as the top-5 JSON Lines, already made, written as ``test_write_top5``
    writes them (the same staged output, synced): what the disk takes, which no formatter
    can go below."""
    from fastmatch import cli, outfile

    size = sum(map(len, cli._FORMATTERS["json"](top5)))
    chunk = bytes(cli._CHUNK_BYTES)

    def write():
        output = outfile.StagedOutput(tmp_path / "floor.bin", binary=True)
        output.write([chunk] * (size // len(chunk)) + [chunk[: size % len(chunk)]])
        output.commit()

    benchmark.group = f"fleet {N:,}: write top-5"
    benchmark.extra_info.update({"implementation": "disk floor (JSON's bytes)", "size": str(N), "bytes": size})
    _timed_cpu(benchmark, write)
