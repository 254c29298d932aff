"""The examples in the package's docstrings run as tests, so a docstring cannot drift from what the code does
(two had, unnoticed, before this file ran them)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import prm


def _modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(prm.__path__, "prm."))


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name):
    try:
        module = importlib.import_module(name)
    except ImportError as e:  # an optional extra (vLLM, the server stack) that this install lacks
        pytest.skip(f"{name}: {e}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} docstring examples fail"
