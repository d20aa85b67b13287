"""What a user reads of the API: a docstring on every public name, rules cited from a page the
package ships (docs/model.md), and a short repr for every public object."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import numpy as np
import pytest

import fastmatch as fm

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "fastmatch"
MODEL = ROOT / "docs" / "model.md"


def public_members(cls: type) -> list[tuple[str, object]]:
    """The methods and properties a class defines for its users (its own, not inherited)."""
    members = []
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if inspect.isfunction(value) or isinstance(value, property) or hasattr(value, "attrname"):  # cached_property
            members.append((name, value))
    return members


def test_every_public_name_and_member_has_a_docstring():
    undocumented = []
    for name in fm.__all__:
        value = getattr(fm, name)
        if not (value.__doc__ or "").strip():
            undocumented.append(name)
        if inspect.isclass(value):
            undocumented += [f"{name}.{member}" for member, v in public_members(value) if not (v.__doc__ or "").strip()]
    assert undocumented == []


def test_public_classes_are_checked_for_docstrings():
    # The check above reads the members it should: a class with methods and properties gives them.
    names = dict(public_members(fm.MatchResult))
    for member in ("top_k", "to_records", "to_pandas", "to_sparse", "score_parts", "shape", "scores", "explain"):
        assert member in names


def _model_sections() -> set[str]:
    return set(re.findall(r"^## (\d+)\. ", MODEL.read_text(encoding="utf-8"), re.M))


def test_the_rules_the_docstrings_cite_are_in_the_shipped_model_page():
    sections = _model_sections()
    assert sections == {str(n) for n in range(1, 10)}
    cited: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "SPEC" not in text, f"{path.relative_to(ROOT)} cites a SPEC that users do not have"
        for found in re.finditer(r"docs/model\.md,? sections? (\d+)(?:\.\d+)?(?:(?:-| and )(\d+))?", text):
            cited.update(group for group in found.groups() if group)
    assert cited and cited <= sections


def test_the_sdist_ships_the_model_page():
    manifest = (ROOT / "MANIFEST.in").read_text(encoding="utf-8")
    assert re.search(r"^recursive-include docs .*\*\.md", manifest, re.M)


# -- reprs -----------------------------------------------------------------------------------
def _public_objects() -> dict[str, object]:
    sources = [{"id": "s", "self": {"mdev_type": "A", "software_version": "1.0"}}]
    targets = [{"id": "t", "self": {"mdev_type": "A", "software_version": "1.2"}}]
    devices = fm.DeviceSet.from_records(sources)
    result = fm.match(devices, targets, workers=1)
    indices, scores = result.top_k(1)
    verdict = fm.check(sources[0], targets[0])
    return {
        "Policy": fm.Policy.default(),
        "a changed Policy": fm.Policy.from_dict({"prefer": "newest", "attributes": {"zone": {"type": "int"}}}),
        "Attribute": fm.Policy.default().attribute("mdev_type"),
        "DeviceSet": devices,
        "MatchResult": result,
        "TargetIndex": fm.TargetIndex(targets),
        "CheckResult": verdict,
        "Reasons": verdict.reasons,
        "ScoreParts": result.score_parts(np.arange(1)[:, None], indices, scores),
        "FastmatchError": fm.InputError("bad", file="f.jsonl", line=2),
    }


@pytest.mark.parametrize("name", list(_public_objects()))
def test_every_public_object_has_a_short_repr_of_its_own(name):
    shown = repr(_public_objects()[name])
    assert " object at 0x" not in shown
    assert len(shown) <= 160, shown
    assert "\n" not in shown


def test_policy_repr_says_what_differs_from_the_default():
    assert repr(fm.Policy.default()) == "<Policy default>"
    changed = fm.Policy.from_dict(
        {"direction": "both", "attributes": {"aggregator": {"rule": "ignore"}, "zone": {"type": "int"}}}
    )
    assert repr(changed) == "<Policy direction='both'; added zone; changed aggregator>"


def test_check_result_repr_leaves_out_the_int64_and_the_explanation():
    verdict = fm.check({"self": {"mdev_type": "A"}}, {"self": {"mdev_type": "A"}})
    shown = repr(verdict)
    assert str(verdict.score) not in shown and "explanation" not in shown
    assert shown.startswith("CheckResult(compatible=True, reasons=Reasons(0x0, []), parts={'exact': True")
