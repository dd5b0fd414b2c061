"""Detectron2's evaluators for tasks d2lite leaves out import, and refuse to be built."""
from __future__ import annotations

import pytest

import d2lite.evaluation as E


@pytest.mark.parametrize(
    "name",
    [
        "COCOPanopticEvaluator",
        "CityscapesInstanceEvaluator",
        "CityscapesSemSegEvaluator",
        "LVISEvaluator",
        "PascalVOCDetectionEvaluator",
        "RotatedCOCOEvaluator",
        "SemSegEvaluator",
    ],
)
def test_out_of_scope_evaluator_imports_and_raises(name):
    cls = getattr(E, name)
    assert issubclass(cls, E.DatasetEvaluator)  # isinstance checks in user code keep working
    with pytest.raises(NotImplementedError, match=f"{name}.*d2lite covers Faster R-CNN"):
        cls("some_dataset")
