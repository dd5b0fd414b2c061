from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from d2lite.evaluation import evaluator as evaluator_module
from d2lite.evaluation import (
    DatasetEvaluator,
    DatasetEvaluators,
    inference_context,
    inference_on_dataset,
)
from d2lite.structures import Boxes, Instances


class _FixedModel(nn.Module):
    """Returns one fixed detection per input and records how it was called."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(1, 1)
        self.calls: list[tuple[bool, bool]] = []

    def forward(self, inputs: list[dict]) -> list[dict]:
        self.calls.append((self.training, torch.is_inference_mode_enabled()))
        outputs = []
        for inp in inputs:
            inst = Instances((inp["height"], inp["width"]))
            inst.pred_boxes = Boxes(torch.tensor([[1.0, 2.0, 5.0, 6.0]]))
            inst.scores = torch.tensor([0.9])
            inst.pred_classes = torch.tensor([0])
            outputs.append({"instances": inst})
        return outputs


class _CountingEvaluator(DatasetEvaluator):
    def __init__(self, key: str = "count") -> None:
        self.key = key
        self.resets = 0
        self.image_ids: list[int] = []

    def reset(self) -> None:
        self.resets += 1
        self.image_ids = []

    def process(self, inputs: list[dict], outputs: list[dict]) -> None:
        assert len(inputs) == len(outputs)
        self.image_ids += [inp["image_id"] for inp in inputs]

    def evaluate(self) -> dict:
        return {self.key: {"images": float(len(self.image_ids))}}


def _loader(num_batches: int, batch_size: int = 2) -> list[list[dict]]:
    return [
        [{"image_id": b * batch_size + i, "height": 8, "width": 10} for i in range(batch_size)]
        for b in range(num_batches)
    ]


def test_inference_on_dataset_runs_eval_mode_and_restores_training():
    model, evaluator = _FixedModel(), _CountingEvaluator()
    model.train()
    results = inference_on_dataset(model, _loader(3), evaluator)
    assert results == {"count": {"images": 6.0}}
    assert evaluator.image_ids == [0, 1, 2, 3, 4, 5]
    assert evaluator.resets == 1
    assert model.calls == [(False, True)] * 3
    assert model.training


def test_inference_on_dataset_none_evaluator_and_list_of_evaluators():
    model = _FixedModel()
    assert inference_on_dataset(model, _loader(2), None) == {}
    evaluators = [_CountingEvaluator("a"), _CountingEvaluator("b")]
    results = inference_on_dataset(model, _loader(1), evaluators)
    assert results == {"a": {"images": 2.0}, "b": {"images": 2.0}}


def test_inference_on_dataset_evaluate_returning_none_gives_empty_dict():
    class _Silent(DatasetEvaluator):
        pass

    assert inference_on_dataset(_FixedModel(), _loader(1), _Silent()) == {}


def test_inference_on_dataset_empty_loader_and_plain_callable():
    results = inference_on_dataset(_FixedModel(), [], _CountingEvaluator())
    assert results == {"count": {"images": 0.0}}
    model = lambda batch: [{} for _ in batch]  # noqa: E731
    results = inference_on_dataset(model, _loader(2), _CountingEvaluator())
    assert results == {"count": {"images": 4.0}}


def test_inference_on_dataset_callbacks_in_order():
    events: list[str] = []
    callbacks = {
        name: (lambda n=name: events.append(n))
        for name in ("on_start", "before_inference", "after_inference", "on_end")
    }
    inference_on_dataset(_FixedModel(), _loader(2), None, callbacks=callbacks)
    assert events == [
        "on_start",
        "before_inference",
        "after_inference",
        "before_inference",
        "after_inference",
        "on_end",
    ]


def test_inference_on_dataset_logs_progress_and_timing(caplog, monkeypatch):
    monkeypatch.setattr(evaluator_module, "_LOG_PERIOD_S", 0.0)
    with caplog.at_level(logging.INFO, logger="d2lite.evaluation.evaluator"):
        inference_on_dataset(_FixedModel(), _loader(12, batch_size=1), None)
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "Start inference on 12 batches"
    progress = [m for m in messages if m.startswith("Inference done")]
    # Five warm-up iterations, then lines start after twice as many, as Detectron2.
    assert [m.split(".")[0] for m in progress] == ["Inference done 11/12", "Inference done 12/12"]
    assert "Dataloading:" in progress[0] and "ETA=0:00:00" in progress[0]
    assert any(m.startswith("Total inference time:") and "on 1 devices" in m for m in messages)
    assert any(m.startswith("Total inference pure compute time:") for m in messages)


def test_inference_on_dataset_model_error_restores_mode():
    class _Broken(nn.Module):
        def forward(self, inputs):
            raise RuntimeError("boom")

    model = _Broken().train()
    with pytest.raises(RuntimeError, match="boom"):
        inference_on_dataset(model, _loader(1), None)
    assert model.training


def test_inference_context_restores_both_modes():
    model = nn.Linear(2, 2).eval()
    with inference_context(model):
        assert not model.training
    assert not model.training
    model.train()
    with inference_context(model):
        assert not model.training
    assert model.training


def test_dataset_evaluators_duplicate_key_raises():
    evaluators = DatasetEvaluators([_CountingEvaluator("x"), _CountingEvaluator("x")])
    with pytest.raises(KeyError, match="same key 'x'"):
        evaluators.evaluate()
