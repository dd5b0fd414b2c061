"""The validation-loss hooks of public Detectron2 recipes, written the way those recipes write
them, must work on DefaultTrainer unchanged and reach metrics.json and TensorBoard."""

from __future__ import annotations

import json
import os

import numpy as np
import torch

from d2lite.config import get_cfg
from d2lite.data import DatasetMapper, build_detection_test_loader, build_detection_train_loader
from d2lite.extras.synthetic import TRASH_CLASSES
from d2lite.engine import DefaultTrainer, HookBase
from d2lite.model_zoo import get_config_file
from d2lite.utils import comm


class LossOnTestSet(HookBase):
    """Every ``period`` iterations (and after the last), the mean summed loss over a whole
    loader, as ``validation_loss``."""

    def __init__(self, period, model, data_loader):
        self._period, self._model, self._loader = period, model, data_loader
        self.ran_at = []

    def _mean_loss(self):
        totals = []
        with torch.no_grad():
            for batch in self._loader:
                losses = self._model(batch)
                totals.append(sum(float(v) for v in losses.values()))
        return float(np.mean(totals))

    def after_step(self):
        next_iter = self.trainer.iter + 1
        if next_iter == self.trainer.max_iter or next_iter % self._period == 0:
            self.ran_at.append(self.trainer.iter)
            self.trainer.storage.put_scalar("validation_loss", self._mean_loss())
            comm.synchronize()


class LossOnOneValBatch(HookBase):
    """Every iteration, the losses of one batch of a training loader over the val set, as
    ``total_val_loss`` and ``val_<loss>``."""

    def __init__(self, cfg):
        cfg = cfg.clone()
        cfg.DATASETS.TRAIN = cfg.DATASETS.TEST
        self._batches = iter(build_detection_train_loader(cfg))

    def after_step(self):
        batch = next(self._batches)
        with torch.no_grad():
            losses = self.trainer.model(batch)
            reduced = {"val_" + k: v.item() for k, v in comm.reduce_dict(losses).items()}
            if comm.is_main_process():
                self.trainer.storage.put_scalars(
                    total_val_loss=sum(reduced.values()), **reduced
                )


class RecipeTrainer(DefaultTrainer):
    def build_hooks(self):
        hooks = super().build_hooks()
        loader = build_detection_test_loader(
            self.cfg, self.cfg.DATASETS.TEST[0], DatasetMapper(self.cfg, True)
        )
        self.test_set_hook = LossOnTestSet(self.cfg.TEST.EVAL_PERIOD, self.model, loader)
        hooks.insert(-1, self.test_set_hook)  # before the writer, so it writes these values
        return hooks


def _cfg(tmp_path, trash_datasets):
    cfg = get_cfg()
    cfg.merge_from_file(get_config_file("tiny/faster_rcnn_tiny.yaml"))
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = len(TRASH_CLASSES)
    cfg.DATASETS.TRAIN = (trash_datasets["train"],)
    cfg.DATASETS.TEST = (trash_datasets["val"],)
    cfg.OUTPUT_DIR = str(tmp_path / "out")
    cfg.SOLVER.MAX_ITER = 2
    cfg.SOLVER.CHECKPOINT_PERIOD = 100
    cfg.TEST.EVAL_PERIOD = 1
    return cfg


def _metrics(cfg):
    with open(os.path.join(cfg.OUTPUT_DIR, "metrics.json")) as f:
        return [json.loads(line) for line in f]


def test_recipe_hooks_reach_metrics_json_and_tensorboard(tmp_path, trash_datasets):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = _cfg(tmp_path, trash_datasets)
    trainer = RecipeTrainer(cfg)
    # The other recipe's way in: register, then swap it with the writer it landed after.
    trainer.register_hooks([LossOnOneValBatch(cfg)])
    trainer._hooks = trainer._hooks[:-2] + trainer._hooks[-2:][::-1]
    trainer.resume_or_load(resume=False)
    trainer.train()

    assert trainer.test_set_hook.ran_at == [0, 1]
    assert trainer.model.training  # the hooks ran the model in training mode, and left it so
    history = trainer.storage.history("validation_loss").values()
    assert [it for _, it in history] == [0, 1]
    assert all(np.isfinite(v) for v, _ in history)

    lines = _metrics(cfg)
    assert [line["iteration"] for line in lines] == [1]  # PeriodicWriter: the last iteration
    (last,) = lines
    # A smoothed scalar is written as the median of its values in the writer's window.
    assert last["validation_loss"] == np.median([v for v, _ in history])
    assert {"total_val_loss", "val_loss_cls", "val_loss_box_reg", "val_loss_rpn_cls"} <= set(last)
    assert last["total_val_loss"] != last["total_loss"]  # validation did not overwrite training

    events = EventAccumulator(cfg.OUTPUT_DIR)
    events.Reload()
    for tag in ("validation_loss", "total_val_loss", "val_loss_cls"):
        (point,) = events.Scalars(tag)
        assert point.step == 1 and np.isclose(point.value, last[tag])
