"""The bounded outputs (top_k, counts, stranded, to_sparse) agree with the dense arrays."""

import random

import numpy as np
import pytest

import fastmatch
from fastmatch.errors import ResultTooLargeError


def _fleet(rng: random.Random, n: int, prefix: str, shared_ids: int = 0):
    records = []
    for k in range(n):
        device_id = f"shared-{k}" if k < shared_ids else f"{prefix}-{k}"
        record = {
            "id": device_id,
            "host": rng.choice(["", "h1", "h2", "h3", "h4"]),
            "self": {
                "mdev_type": rng.choice(["a", "b", "c"]),
                "software_version": rng.choice(["1.0.1", "1.1.4", "1.2", "2.0", ""]),
                "pv_mode": rng.choice(["none", "none+ppgtt", ""]),
            },
            "capacity": rng.choice([0, 1, 1, 2]),
        }
        if rng.random() < 0.25:
            record["compatible"] = [{"mdev_type": ["a", "b"], "software_version": "*"}]
        records.append(record)
    return records


def _naive_top_k(scores: np.ndarray, capacities: np.ndarray, k: int):
    n = scores.shape[0]
    indices = np.full((n, k), -1, dtype=np.int64)
    best = np.full((n, k), -1, dtype=np.int64)
    for i in range(n):
        candidates = [j for j in range(scores.shape[1]) if scores[i, j] >= 0 and capacities[j] > 0]
        candidates.sort(key=lambda j: (-scores[i, j], j))
        for rank, j in enumerate(candidates[:k]):
            indices[i, rank] = j
            best[i, rank] = scores[i, j]
    return indices, best


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("exclude_same_host", [True, False])
def test_bounded_outputs_agree_with_dense_arrays(seed, exclude_same_host, implementation):
    rng = random.Random(seed)
    sources = _fleet(rng, 60, "s", shared_ids=5)
    targets = _fleet(rng, 70, "t", shared_ids=5)
    policy = fastmatch.Policy.from_dict({"exclude_same_host": exclude_same_host})
    result = fastmatch.match(sources, targets, policy, workers=2, block=3)

    scores = result.scores
    capacities = np.array([r["capacity"] for r in targets])
    for k in (1, 3, 100):
        expected = _naive_top_k(scores, capacities, k)
        got = result.top_k(k)
        assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1]), k

    available = (scores >= 0) & (capacities > 0)[None, :]
    assert np.array_equal(result.counts(), available.sum(axis=1))
    assert np.array_equal(result.stranded(), np.flatnonzero(available.sum(axis=1) == 0))

    sparse = result.to_sparse()
    assert sparse.shape == scores.shape
    dense = np.full(scores.shape, -1, dtype=np.int64)
    rows = np.repeat(np.arange(sparse.shape[0]), np.diff(sparse.indptr))
    dense[rows, sparse.indices] = sparse.data - 1  # stored as score + 1
    assert np.array_equal(dense, scores)


def test_top_k_skips_same_host_deep_in_the_ranking(implementation):
    """Many equally good targets on the source's own host must not crowd out the others."""
    source = {"id": "s", "host": "h1", "self": {"mdev_type": "a"}}
    crowd = [{"id": f"t{k}", "host": "h1", "self": {"mdev_type": "a"}} for k in range(30)]
    elsewhere = [{"id": "far", "host": "h2", "self": {"mdev_type": "a"}}]
    result = fastmatch.match([source], crowd + elsewhere)
    indices, scores = result.top_k(2)
    assert indices.tolist() == [[30, -1]]
    assert scores[0, 1] == -1 and scores[0, 0] > 0


def test_dense_arrays_refused_above_the_memory_limit():
    sources = [{"id": f"s{k}", "self": {"mdev_type": "a"}} for k in range(20)]
    targets = [{"id": f"s{k}", "self": {"mdev_type": "a"}} for k in range(20)]
    result = fastmatch.match(sources, targets, memory_limit=1000)
    with pytest.raises(ResultTooLargeError, match=r"top_k\(\), counts\(\), stranded\(\) or to_sparse\(\)"):
        result.scores
    assert result.counts().tolist() == [19] * 20  # the same device is never its own target
    assert result.top_k(1)[0].shape == (20, 1)


def test_empty_sides_give_shaped_outputs(implementation):
    some = [{"id": "a", "self": {"mdev_type": "x"}}]
    for sources, targets in (([], some), (some, []), ([], [])):
        result = fastmatch.match(sources, targets)
        n, m = len(sources), len(targets)
        assert result.scores.shape == (n, m)
        assert result.counts().shape == (n,)
        assert result.stranded().tolist() == list(range(n))
        assert result.to_sparse().shape == (n, m)
        assert result.top_k(2)[0].shape == (n, 2)


def test_memory_limit_from_the_environment(monkeypatch):
    sources = [{"id": f"s{k}", "self": {"mdev_type": "a"}} for k in range(10)]
    monkeypatch.setenv("FASTMATCH_MEMORY_LIMIT", "100")
    result = fastmatch.match(sources, sources)
    with pytest.raises(ResultTooLargeError):
        result.reasons
    monkeypatch.setenv("FASTMATCH_MEMORY_LIMIT", "a lot")
    with pytest.raises(fastmatch.FastmatchError, match="FASTMATCH_MEMORY_LIMIT='a lot'"):
        fastmatch.match(sources, sources)
