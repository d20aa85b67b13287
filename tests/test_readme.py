"""The README's Python examples return what they say.

Every ```python block runs, in order, in one namespace, from the repository root: a block
written as an interactive session (``>>>``) is a doctest, whose shown results must be what
the code returns; any other block must run without an error. They run as a user's would,
with the native kernel (the reference gives each device its own class: other class counts).
"""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FENCED_PYTHON = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks() -> list[tuple[int, str]]:
    """``(line, code)`` of every ```python block of the README."""
    text = README.read_text(encoding="utf-8")
    return [(text.count("\n", 0, found.start()) + 2, found.group(1)) for found in FENCED_PYTHON.finditer(text)]


def test_the_readme_has_python_examples():
    blocks = python_blocks()
    assert len(blocks) >= 2
    code = "\n".join(code for _, code in blocks)
    for call in ("fastmatch.match(", "TargetIndex(", ".to_pandas(", ".to_records(", ".index_of(", ".to_sparse("):
        assert call in code, call


def test_readme_python_examples_return_what_they_say(monkeypatch):
    if not (ROOT / "src" / "fastmatch" / "data").is_dir():
        pytest.skip("needs the source tree")
    pytest.importorskip("pandas")
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("FASTMATCH_IMPLEMENTATION", raising=False)
    namespace: dict[str, object] = {}
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    for line, code in python_blocks():
        if ">>> " in code:
            test = parser.get_doctest(code, namespace, f"README.md:{line}", str(README), line - 1)
            report: list[str] = []
            outcome = runner.run(test, out=report.append, clear_globs=False)
            assert outcome.failed == 0, "".join(report)
            namespace.update(test.globs)  # the doctest ran in a copy; later blocks read its names
        else:
            exec(compile(code, f"README.md:{line}", "exec"), namespace)


def test_the_readme_policy_is_the_built_in_one():
    import tomllib

    import fastmatch

    text = README.read_text(encoding="utf-8")
    section = text[text.index("## The policy") :]
    block = re.search(r"^```toml\n(.*?)^```", section, re.S | re.M)
    assert block is not None
    assert fastmatch.Policy.from_dict(tomllib.loads(block.group(1))) == fastmatch.Policy.default()
