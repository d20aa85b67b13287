"""Ctrl-C stops a long match within a second, with exit status 130 and no traceback."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import fastmatch
from fastmatch.generate import write_fleet


def test_ctrl_c_stops_a_long_match_within_a_second(tmp_path):
    # No two descriptors alike: every source class is ranked against every target class.
    write_fleet(tmp_path, 30_000, 30_000, 30_000, seed=3)
    env = dict(os.environ, PYTHONPATH=str(Path(fastmatch.__file__).parent.parent))
    command = [sys.executable, "-m", "fastmatch", "match", str(tmp_path / "sources.jsonl"),
               str(tmp_path / "targets.jsonl"), "--quiet", "--format", "json", "-o", str(tmp_path / "out.jsonl")]
    started = time.monotonic()
    # Ctrl-C as a terminal delivers it: a shell starts a background job (a CI run with `&`)
    # with SIGINT ignored, which its children inherit, and Python then installs no handler.
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    time.sleep(2.5)
    assert process.poll() is None, "the match ended before it could be interrupted; make the fleet larger"
    process.send_signal(signal.SIGINT)
    interrupted = time.monotonic()
    _, stderr = process.communicate(timeout=30)
    stopped = time.monotonic()
    assert process.returncode == 130
    assert stderr.strip() == "fastmatch: interrupted"
    assert stopped - interrupted < 1.0, f"took {stopped - interrupted:.2f} s to stop (ran {interrupted - started:.1f} s)"
    assert not (tmp_path / "out.jsonl").exists()
