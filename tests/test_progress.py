"""Progress bars show on a terminal, and only there (not in a pipe, not with --quiet)."""

import fcntl
import json
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
    for path in fleet:  # each stage of reading each input, in its own units
        for stage in ("reading", "decoding", "parsing"):
            assert f"{stage} {path}" in shown
    assert "matching" in shown and "/9.00M" in shown and "pair/s" in shown  # 3000 x 3000 device pairs


class Recorder:
    """A tqdm stand-in that keeps what each bar was made with and counted."""

    def __init__(self) -> None:
        self.bars: list[dict] = []

    def __call__(self, total=None, desc="", unit="", **_):
        bar = {"desc": desc, "total": total, "unit": unit, "done": 0, "closed": False}
        self.bars.append(bar)

        class Bar:
            def update(self, n=1):
                bar["done"] += n

            def close(self):
                bar["closed"] = True

        return Bar()


def test_each_bar_counts_what_its_stage_does(tmp_path):
    sources, targets = write_fleet(tmp_path, 5000, 3000, 40, seed=2)  # far fewer classes than devices
    recorder = Recorder()
    loaded = fastmatch.load(sources, progress=recorder)
    n_descriptors = len(loaded.descriptors)
    assert n_descriptors <= 40
    assert [(b["desc"], b["total"], b["unit"], b["done"], b["closed"]) for b in recorder.bars] == [
        (f"reading {sources}", sources.stat().st_size, "B", sources.stat().st_size, True),
        (f"decoding {sources}", 5000, "line", 5000, True),
        (f"parsing {sources}", n_descriptors, "descriptor", n_descriptors, True),
    ]
    recorder.bars.clear()
    records = [json.loads(line) for line in targets.read_text().splitlines()]
    array = tmp_path / "targets.json"
    array.write_text(json.dumps(records))  # off the fast path: records are validated one by one
    fastmatch.load(array, progress=recorder)
    assert [(b["desc"], b["total"], b["done"]) for b in recorder.bars] == [
        (f"reading {array}", array.stat().st_size, array.stat().st_size),
        (f"validating {array}", 3000, 3000),
    ]
    recorder.bars.clear()
    result = fastmatch.match(loaded, fastmatch.load(targets), progress=recorder)
    result.top_k(3)
    (bar,) = recorder.bars
    assert result.class_shape[0] < 5000
    assert (bar["desc"], bar["unit"], bar["total"], bar["done"]) == ("matching", "pair", 5000 * 3000, 5000 * 3000)


def test_no_bars_with_quiet_or_in_a_pipe(fleet, tmp_path):
    out = str(tmp_path / "out.jsonl")
    assert _run_on_a_terminal(["match", *fleet, "--format", "json", "-o", out, "--quiet"]) == ""
    piped = subprocess.run(
        [sys.executable, "-m", "fastmatch", "match", *fleet, "--format", "json", "-o", out],
        capture_output=True, text=True, env=ENV, check=True,
    )
    assert piped.stderr == "" and piped.stdout == ""
