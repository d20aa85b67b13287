import pytest


@pytest.fixture(params=["native", "python"])
def implementation(request, monkeypatch):
    """Run a test once with the native kernel and once with the plain-Python reference.

    Tests that do not ask for it run with whatever FASTMATCH_IMPLEMENTATION says
    (the native kernel by default).
    """
    monkeypatch.setenv("FASTMATCH_IMPLEMENTATION", request.param)
    return request.param
