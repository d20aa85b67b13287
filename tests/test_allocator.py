"""The command line's allocator policy (``fastmatch.allocator``): freed memory is reused, not
faulted in again. Each case runs in a process of its own: the policy is process-wide."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")

# Faults taken by a second 3 MiB array after the first was freed (under NumPy's 4 MiB, from
# which it asks for huge pages: with them a fresh array takes few faults either way).
SECOND_ARRAY_FAULTS = """
import resource, sys
import numpy as np
from fastmatch.allocator import keep_freed_memory
if sys.argv[1] == "kept":
    assert keep_freed_memory()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
first = np.ones(3 << 20, np.uint8)
del first
before = faults()
second = np.ones(3 << 20, np.uint8)
print(faults() - before)
"""


def _second_array_faults(policy: str) -> int:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("GLIBC_TUNABLES", None)
    done = subprocess.run([sys.executable, "-c", SECOND_ARRAY_FAULTS, policy], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


def test_memory_freed_under_the_policy_is_reused_without_faulting_it_in_again():
    pages = (3 << 20) // os.sysconf("SC_PAGE_SIZE")
    assert _second_array_faults("default") > pages // 2  # glibc gave the first back to the kernel
    assert _second_array_faults("kept") < pages // 20


ARROW_POOL = """
import sys
from fastmatch.allocator import keep_freed_memory
if sys.argv[1] == "kept":
    assert keep_freed_memory()
import pyarrow as pa
print(pa.default_memory_pool().backend_name)
"""


def _arrow_pool(policy: str, chosen: str | None = None) -> str:
    pytest.importorskip("pyarrow")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("ARROW_DEFAULT_MEMORY_POOL", None)
    if chosen is not None:
        env["ARROW_DEFAULT_MEMORY_POOL"] = chosen
    done = subprocess.run([sys.executable, "-c", ARROW_POOL, policy], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_arrow_allocates_through_the_kept_malloc_under_the_policy_unless_the_user_chose_a_pool():
    assert _arrow_pool("default") != "system"  # pyarrow's own default (mimalloc or jemalloc)
    assert _arrow_pool("kept") == "system"
    assert _arrow_pool("kept", chosen="mimalloc") == "mimalloc"
