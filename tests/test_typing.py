"""The package type-checks under ``mypy --strict`` (its settings are pyproject.toml's
``[tool.mypy]``): the ``py.typed`` it ships is a promise to the users' type checkers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_strict_passes_on_the_package():
    if not (ROOT / "src" / "fastmatch").is_dir():
        pytest.skip("needs the source tree")
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--config-file", str(ROOT / "pyproject.toml"), "src/fastmatch"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
