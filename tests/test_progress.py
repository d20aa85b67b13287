"""Progress bars show on a terminal, and only there (not in a pipe, not with --quiet)."""

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

import fastmatch
from fastmatch.generate import write_fleet

ENV = dict(os.environ, PYTHONPATH=str(Path(fastmatch.__file__).parent.parent))


def _run_on_a_terminal(arguments: list[str]) -> str:
    """Everything the command writes to a 100-column terminal."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "fastmatch", *arguments], stdin=terminal, stdout=terminal, stderr=terminal, env=ENV
    )
    os.close(terminal)
    output = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the terminal closed
            break
        if not chunk:
            break
        output += chunk
    assert process.wait(timeout=60) == 0
    return output.decode(errors="replace")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    directory = tmp_path_factory.mktemp("fleet")
    return [str(p) for p in write_fleet(directory, 3000, 3000, 3000, seed=1)]


def test_bars_on_a_terminal(fleet, tmp_path):
    shown = _run_on_a_terminal(["match", *fleet, "--format", "json", "-o", str(tmp_path / "out.jsonl")])
    assert "reading" in shown and "2/2" in shown
    assert "matching" in shown and "pair" in shown


def test_no_bars_with_quiet_or_in_a_pipe(fleet, tmp_path):
    out = str(tmp_path / "out.jsonl")
    assert _run_on_a_terminal(["match", *fleet, "--format", "json", "-o", out, "--quiet"]) == ""
    piped = subprocess.run(
        [sys.executable, "-m", "fastmatch", "match", *fleet, "--format", "json", "-o", out],
        capture_output=True, text=True, env=ENV, check=True,
    )
    assert piped.stderr == "" and piped.stdout == ""
