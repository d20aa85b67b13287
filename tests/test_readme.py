"""The README's Python examples run as written (from the repository root)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_readme_python_examples_run():
    readme = ROOT / "README.md"
    if not (ROOT / "src" / "fastmatch" / "data").is_dir():
        pytest.skip("needs the source tree")
    code = "\n".join(re.findall(r"```python\n(.*?)```", readme.read_text(), re.S))
    assert "fastmatch.match(" in code
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
