"""fastmatch.distributed on a LocalCluster of 2 worker processes on loopback: every output is
the local run's, the problem is scattered once to each worker, and a worker killed mid-run
leaves the answer complete and correct (Dask runs its tasks again)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastmatch
from fastmatch import distributed as on_dask
from fastmatch.cli import main
from fastmatch.generate import write_fleet

distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")

TIMEOUT = 120  # seconds any wait on the cluster may take before the test fails


def _cluster():
    return distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0", silence_logs=40
    )


@pytest.fixture(scope="module")
def client():
    with _cluster() as cluster, distributed.Client(cluster, timeout=TIMEOUT) as client:
        client.wait_for_workers(2, timeout=TIMEOUT)
        yield client


def _fleets(tmp_path: Path, n: int, distinct: int, seed: int):
    write_fleet(tmp_path, n, n, distinct, seed=seed)
    return fastmatch.load(tmp_path / "sources.jsonl"), fastmatch.load(tmp_path / "targets.jsonl")


POLICIES = {
    "default": fastmatch.Policy.default(),
    "newest, same host allowed": fastmatch.Policy.from_dict({"prefer": "newest", "exclude_same_host": False}),
}


@pytest.mark.parametrize("policy", POLICIES.values(), ids=POLICIES.keys())
@pytest.mark.parametrize("n, distinct, blocking", [(3000, 300, "never"), (6000, 1200, "always")])
def test_every_output_equals_the_local_run(client, tmp_path, monkeypatch, policy, n, distinct, blocking):
    monkeypatch.setenv("FASTMATCH_BLOCKING", blocking)
    sources, targets = _fleets(tmp_path, n, distinct, seed=n)
    local = fastmatch.match(sources, targets, policy)
    remote = on_dask.match(sources, targets, policy, client, task_seconds=0.0002)
    assert len(remote.tasks) > 2  # the classes are split
    covered = np.concatenate([np.arange(a, b) for a, b in remote.tasks])
    assert np.array_equal(covered, np.arange(remote.class_shape[0]))
    for k in (1, 5, 40):
        (li, ls), (ri, rs) = local.top_k(k), remote.top_k(k)
        assert np.array_equal(li, ri) and np.array_equal(ls, rs)
    assert np.array_equal(local.counts(), remote.counts())
    assert np.array_equal(local.stranded(), remote.stranded())
    assert len(remote.stranded()) > 0  # the generated fleets strand some sources: the reduction is exercised
    rows = np.arange(n)[:, None]
    indices, scores = local.top_k(5)
    a, b = local.score_parts(rows, indices, scores), remote.score_parts(rows, indices, scores)
    assert [a.json((i, r)) for i in range(0, n, 97) for r in range(5)] == [b.json((i, r)) for i in range(0, n, 97) for r in range(5)]
    assert local.explain(3, 7) == remote.explain(3, 7)


def test_the_problem_is_scattered_once_to_every_worker(tmp_path):
    sources, targets = _fleets(tmp_path, 2000, 200, seed=1)
    # Dask's active memory manager (its ReduceReplicas policy, every 2 s) drops a copy that no
    # task waits for between two calls: this cluster runs without it, so that the copies
    # counted are the ones fastmatch made.
    config = {"distributed.scheduler.active-memory-manager.start": False}
    with dask.config.set(config), _cluster() as cluster, distributed.Client(cluster, timeout=TIMEOUT) as client:
        client.wait_for_workers(2, timeout=TIMEOUT)
        result = on_dask.match(sources, targets, None, client, task_seconds=0.001)
        result.top_k(3)
        result.counts()
        result.top_k(2)
        problem_keys = [key for key in client.who_has() if str(key).startswith("ScatteredProblem-")]
        assert len(problem_keys) == 1
        assert len(client.who_has()[problem_keys[0]]) == 2  # one copy on each worker, none per task


def test_class_ranges_cover_the_classes_in_tasks_of_about_the_time_asked():
    costs = np.array([0.01] * 50 + [0.5] + [0.02] * 10)
    ranges = on_dask.class_ranges(costs, 0.1)
    assert ranges[0][0] == 0 and ranges[-1][1] == len(costs)
    assert all(a < b for a, b in ranges) and all(b == c for (_, b), (c, _) in zip(ranges, ranges[1:]))
    assert all(costs[a:b].sum() <= 0.1 + costs[a:b].max() + 1e-9 for a, b in ranges)  # one class at most past the time
    assert all(costs[a:c].sum() > 0.1 for (a, _), (_, c) in zip(ranges, ranges[1:]))  # no needless split
    assert on_dask.class_ranges(np.zeros(0), 0.1) == []
    assert on_dask.class_ranges(np.full(4, 1e-6), 0.1) == [(0, 4)]


def test_a_worker_killed_mid_run_leaves_the_answer_complete_and_correct(tmp_path):
    sources, targets = _fleets(tmp_path, 40_000, 2000, seed=4)
    local_indices, local_scores = fastmatch.match(sources, targets).top_k(5)
    with _cluster() as cluster, distributed.Client(cluster, timeout=TIMEOUT) as client:
        client.wait_for_workers(2, timeout=TIMEOUT)
        result = on_dask.match(sources, targets, None, client, task_seconds=0.0005)
        futures = result._outputs.submit_top_k(5)
        assert len(futures) > 20
        first = next(iter(distributed.as_completed(futures)))
        first.result(timeout=TIMEOUT)
        busy = [worker for worker, keys in client.processing().items() if keys]
        assert busy, "every task finished before a worker could be killed"
        pids = client.run(os.getpid, workers=[busy[0]])
        os.kill(pids[busy[0]], signal.SIGKILL)
        distributed.wait(futures, timeout=TIMEOUT)
        assert sum(future.status == "finished" for future in futures) == len(futures)
        indices = np.full((len(sources), 5), -1, dtype=np.int64)
        scores = indices.copy()
        on_dask.gather_top_k(client, futures, indices, scores)
    assert np.array_equal(indices, local_indices) and np.array_equal(scores, local_scores)


def test_match_dask_writes_what_the_local_match_writes(client, tmp_path):
    write_fleet(tmp_path, 2500, 2500, 250, seed=2)
    s, t = str(tmp_path / "sources.jsonl"), str(tmp_path / "targets.jsonl")
    assert main(["match", s, t, "--format", "json", "-o", str(tmp_path / "local.jsonl")]) == 0
    address = client.scheduler.address
    assert main(["match", s, t, "--format", "json", "--dask", address, "-o", str(tmp_path / "dask.jsonl")]) == 0
    assert (tmp_path / "dask.jsonl").read_bytes() == (tmp_path / "local.jsonl").read_bytes()
    assert main(["match", s, t, "--format", "json", "--dask", "local", "-o", str(tmp_path / "local-cluster.jsonl")]) == 0
    assert (tmp_path / "local-cluster.jsonl").read_bytes() == (tmp_path / "local.jsonl").read_bytes()
    assert len([json.loads(line) for line in (tmp_path / "dask.jsonl").read_text().splitlines()]) == 2500
    for where, extra in (("local", []), ("dask", ["--dask", address])):
        assert main(["match", s, t, "-o", str(tmp_path / f"{where}.txt"), "--summary-json", str(tmp_path / f"{where}-summary.json"), *extra]) == 0
    assert json.loads((tmp_path / "dask-summary.json").read_text()) == json.loads((tmp_path / "local-summary.json").read_text())


def test_dask_is_imported_only_when_asked_for(tmp_path):
    code = (
        "import sys, fastmatch.cli as cli\n"
        "assert cli.main(['demo']) == 0\n"
        "assert 'distributed' not in sys.modules and 'dask' not in sys.modules, 'dask imported'\n"
    )
    src = str(Path(fastmatch.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr


def test_an_unreachable_scheduler_is_one_error_line(tmp_path, capsys):
    import socket

    with socket.socket() as sock:  # a free loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    demo = Path(fastmatch.__file__).parent / "data"
    status = main(["match", str(demo / "demo_sources.jsonl"), str(demo / "demo_targets.jsonl"), "--dask", f"tcp://127.0.0.1:{port}"])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith(f"fastmatch: error: cannot reach the Dask scheduler at 'tcp://127.0.0.1:{port}'")
    assert err.count("\n") == 1
