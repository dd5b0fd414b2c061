"""Every public name of Detectron2's modules in d2lite's scope imports from the d2lite module.

The list (tests/fixtures/detectron2_public_names.json) was read off Detectron2 0.6. Names of
features d2lite leaves out import too, and raise NotImplementedError when used.
"""
from __future__ import annotations

import importlib
import inspect
import json
from pathlib import Path

import pytest

NAMES = json.loads((Path(__file__).parent / "fixtures" / "detectron2_public_names.json").read_text())
PAIRS = [(module, name) for module, names in NAMES.items() for name in names]


def _is_unsupported(obj) -> bool:
    return (obj.__doc__ or "").startswith("Not in d2lite")


@pytest.mark.parametrize("module, name", PAIRS, ids=[f"{m}.{n}" for m, n in PAIRS])
def test_detectron2_name_imports_from_d2lite(module, name):
    mod = importlib.import_module(f"d2lite.{module}")
    assert hasattr(mod, name), f"d2lite.{module} has no {name}"


def test_out_of_scope_names_raise_when_used():
    seen = 0
    for module, name in PAIRS:
        obj = getattr(importlib.import_module(f"d2lite.{module}"), name)
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and _is_unsupported(obj):
            seen += 1
            with pytest.raises(NotImplementedError, match=name):
                obj()
    assert seen >= 30  # masks, keypoints, rotated boxes, RetinaNet, LazyConfig, ...
