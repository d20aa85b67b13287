import os

import pytest


@pytest.fixture(params=["native", "python"])
def implementation(request, monkeypatch):
    """Run a test once with the native kernel and once with the plain-Python reference."""
    monkeypatch.setenv("FASTMATCH_IMPLEMENTATION", request.param)
    return request.param


@pytest.fixture(autouse=True)
def _no_implementation_leak(monkeypatch):
    # Tests that do not ask for an implementation get the default (native).
    if "FASTMATCH_IMPLEMENTATION" in os.environ:
        monkeypatch.delenv("FASTMATCH_IMPLEMENTATION")
