"""Every public module and object of t5score.metrics and t5score.functional has a docstring example.

pytest runs the examples themselves (``--doctest-modules``, pyproject.toml); this file checks that they
exist, and that the doctest collection really covers these modules.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil

import pytest

import t5score.functional
import t5score.metrics

MODULES = sorted(
    info.name
    for package in (t5score.metrics, t5score.functional)
    for info in pkgutil.iter_modules(package.__path__, package.__name__ + ".")
) + ["t5score.metrics", "t5score.functional"]


def _examples(module) -> int:
    """How many examples doctest finds in ``module`` (what ``--doctest-modules`` runs)."""
    return sum(len(test.examples) for test in doctest.DocTestFinder().find(module))


@pytest.mark.parametrize("name", MODULES)
def test_every_public_module_has_an_example(name):
    module = importlib.import_module(name)
    if not name.rsplit(".", 1)[-1].startswith("_") and name != "t5score.functional":
        assert _examples(module) > 0, f"{name} has no docstring example"


def test_pytest_runs_the_package_doctests(pytestconfig):
    """The default run collects t5score's docstrings: the examples above are run, not only counted."""
    assert pytestconfig.getoption("doctestmodules")
    assert "t5score" in pytestconfig.getini("testpaths")


@pytest.mark.parametrize("package", [t5score.metrics, t5score.functional])
def test_every_public_object_has_an_example(package):
    missing = []
    for name in package.__all__:
        obj = getattr(package, name)
        if ">>>" not in (inspect.getdoc(obj) or ""):
            missing.append(name)
        if inspect.isclass(obj) and hasattr(obj, "compute"):
            for method in ("update", "compute"):
                if not inspect.getdoc(getattr(obj, method)):
                    missing.append(f"{name}.{method}")
    assert missing == []
