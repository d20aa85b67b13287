"""What the command asks of NumPy before importing it (``fastmatch.__main__.numpy_settings``):
no BLAS threads of its own, no transparent huge pages, unless the user says otherwise. Each
case runs in a process of its own: NumPy reads both settings when it is imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

NUMPY_AS_SET = """
import json, os, sys
from fastmatch.__main__ import numpy_settings
if sys.argv[1] in ("command", "serve"):
    numpy_settings(serving=sys.argv[1] == "serve")
import numpy
from numpy._core.multiarray import _get_madvise_hugepage
print(json.dumps({"threads": len(os.listdir("/proc/self/task")), "huge_pages": _get_madvise_hugepage()}))
"""

# What OpenBLAS reads for its threads (the first set wins) and NumPy for huge pages, cleared
# for each case: a Dask LocalCluster sets OMP_NUM_THREADS=1 in the environment of the process
# that starts it, and the Dask tests run in this one before these.
SETTINGS = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS", "NUMPY_MADVISE_HUGEPAGE")


def _numpy_as_set(asked: str, **chosen: str) -> dict[str, object]:
    environment = {key: value for key, value in os.environ.items() if key not in SETTINGS}
    environment.update(PYTHONPATH=os.pathsep.join(sys.path), **chosen)
    done = subprocess.run(
        [sys.executable, "-c", NUMPY_AS_SET, asked], capture_output=True, text=True, env=environment, timeout=60
    )
    assert done.returncode == 0, done.stderr
    found: dict[str, object] = json.loads(done.stdout)
    return found


@pytest.mark.skipif(
    not os.path.isdir("/proc/self/task") or len(os.sched_getaffinity(0)) < 2, reason="counts a process's threads in /proc, on 2 cores"
)
def test_the_command_keeps_numpy_to_one_blas_thread_unless_the_user_says() -> None:
    assert _numpy_as_set("library")["threads"] > 1  # OpenBLAS's own: what the command avoids
    assert _numpy_as_set("command")["threads"] == 1
    assert _numpy_as_set("command", OPENBLAS_NUM_THREADS="2")["threads"] == 2


def test_the_command_asks_for_no_huge_pages_unless_the_user_says_or_it_serves() -> None:
    assert _numpy_as_set("command")["huge_pages"] is False
    assert _numpy_as_set("command", NUMPY_MADVISE_HUGEPAGE="1")["huge_pages"] is True
    assert _numpy_as_set("serve")["huge_pages"] == _numpy_as_set("library")["huge_pages"]
    assert _numpy_as_set("serve")["threads"] == 1
