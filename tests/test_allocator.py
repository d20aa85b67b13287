"""The command line's allocator policy (``fastmatch.allocator``): freed memory is reused, not
faulted in again. Each case runs in a process of its own: the policy is process-wide."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from fastmatch import allocator

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


def _printed(script: str, case: str, **environment: str | None) -> str:
    """What ``script`` prints, given ``case``, in a process of its own (the policy is
    process-wide), with ``environment``'s variables set (or, ``None``, left out)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "GLIBC_TUNABLES": None, **environment}
    done = subprocess.run(
        [sys.executable, "-c", script, case],
        capture_output=True,
        text=True,
        env={key: value for key, value in env.items() if value is not None},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _second_array_faults(policy: str) -> int:
    return int(_printed(SECOND_ARRAY_FAULTS, policy))


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
    return _printed(ARROW_POOL, policy, ARROW_DEFAULT_MEMORY_POOL=chosen)


def test_arrow_allocates_through_the_kept_malloc_under_the_policy_unless_the_user_chose_a_pool():
    assert _arrow_pool("default") != "system"  # pyarrow's own default (mimalloc or jemalloc)
    assert _arrow_pool("kept") == "system"
    assert _arrow_pool("kept", chosen="mimalloc") == "mimalloc"


# Faults taken by the main thread's arrays (3 MiB each, 48 MiB in all) after another thread
# freed memory: the policy's one heap reuses it, where glibc gives each thread its own.
FAULTS_AFTER_ANOTHER_THREAD = """
import resource, sys, threading
import numpy as np
from fastmatch.allocator import keep_freed_memory, touch_ahead
if sys.argv[1] != "default":
    assert keep_freed_memory()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
if sys.argv[1] == "touched":
    touch_ahead(64 << 20).join()
else:
    def use_and_free():
        arrays = [np.ones(3 << 20, np.uint8) for _ in range(16)]
        del arrays
    thread = threading.Thread(target=use_and_free)
    thread.start()
    thread.join()
before = faults()
arrays = [np.ones(3 << 20, np.uint8) for _ in range(16)]
print(faults() - before)
"""


def _faults_after_another_thread(case: str) -> int:
    return int(_printed(FAULTS_AFTER_ANOTHER_THREAD, case, NUMPY_MADVISE_HUGEPAGE="0"))


def test_memory_another_thread_freed_is_reused_under_the_policy():
    pages = (48 << 20) // os.sysconf("SC_PAGE_SIZE")
    assert _faults_after_another_thread("default") > pages // 2  # the thread's arena, or given back
    assert _faults_after_another_thread("kept") < pages // 20


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="touch_ahead needs a second core")
def test_memory_touched_ahead_is_used_without_faulting_it_in():
    pages = (48 << 20) // os.sysconf("SC_PAGE_SIZE")
    assert _faults_after_another_thread("touched") < pages // 20


def test_touch_ahead_declines_little_memory_and_a_single_core(monkeypatch):
    assert allocator.touch_ahead(allocator._TOUCH_BLOCK - 1) is None
    monkeypatch.setattr(allocator.os, "sched_getaffinity", lambda pid: {0})
    assert allocator.touch_ahead(allocator.TOUCH_AHEAD_MOST) is None


def test_the_budget_counts_the_columnar_files_a_command_line_names(tmp_path):
    fleet = tmp_path / "fleet.parquet"
    fleet.write_bytes(b"PAR1" + b"x" * 996)
    stream = tmp_path / "fleet.arrows"
    stream.write_bytes(b"\xff\xff\xff\xff" + b"x" * 96)
    lines = tmp_path / "fleet.jsonl"
    lines.write_bytes(b'{"id": "a"}\n' * 1000)
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)  # (opened, it would block this test: it must not be)
    arguments = ["match", str(fleet), str(fleet), str(stream), str(lines), str(pipe), str(tmp_path), str(tmp_path / "absent"), "-"]
    assert allocator.touch_budget([*arguments, "--top", "5", "a\0b", "x" * 5000]) == 2100 * allocator.TOUCH_PER_INPUT_BYTE
    large = tmp_path / "large.parquet"
    with large.open("wb") as sparse_file:
        sparse_file.write(b"PAR1")
        sparse_file.truncate(allocator.TOUCH_AHEAD_MOST)  # (a sparse file: no disk taken)
    assert allocator.touch_budget([str(large)]) == allocator.TOUCH_AHEAD_MOST


@pytest.mark.parametrize("command", ["match", "serve"])
def test_the_command_sets_the_policy_and_touches_ahead_for_its_fleets_but_serve(monkeypatch, tmp_path, command):
    """``fastmatch.__main__.entry``: before the package's imports, the policy and a budget of
    memory to touch ahead from the files named; a server leaves its allocator alone."""
    import fastmatch.__main__ as main
    from fastmatch import cli

    fleet = tmp_path / "fleet.parquet"
    fleet.write_bytes(b"PAR1" + b"x" * (1 << 20))
    calls: list[object] = []
    monkeypatch.setattr(allocator, "keep_freed_memory", lambda: calls.append("policy") or True)  # (not this process's)
    monkeypatch.setattr(allocator, "touch_ahead", calls.append)
    monkeypatch.setattr(cli, "main", lambda: calls.append("main") or 0)
    monkeypatch.setattr(cli, "exit_at_once", False)

    def exit_now(status: int) -> None:
        raise SystemExit(status)

    monkeypatch.setattr(main.os, "_exit", exit_now)
    for setting in ("OPENBLAS_NUM_THREADS", "NUMPY_MADVISE_HUGEPAGE"):
        monkeypatch.delenv(setting, raising=False)  # (entry sets them; undone after the test)
    monkeypatch.setattr(main.sys, "argv", ["fastmatch", command, str(fleet), str(fleet), "--top", "5"])
    with pytest.raises(SystemExit) as exited:
        main.entry()
    assert exited.value.code == 0
    budget = min(allocator.TOUCH_AHEAD_MOST, 2 * fleet.stat().st_size * allocator.TOUCH_PER_INPUT_BYTE)
    assert calls == (["policy", budget, "main"] if command == "match" else ["main"])
