"""Run the docstring examples of t5score.metrics and t5score.functional (same as --doctest-modules there)."""

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


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_pass(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    if not name.rsplit(".", 1)[-1].startswith("_") and name != "t5score.functional":
        assert result.attempted > 0, f"{name} has no docstring example"


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
