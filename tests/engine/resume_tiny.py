"""The tiny Faster R-CNN on synthetic trash data, as the exact-resume tests train it.

``train_tiny`` trains with a checkpoint after every iteration, resuming from ``out_dir`` when it
holds one. Each iteration's raw losses go to ``out_dir/losses.jsonl`` (appended, one line per
iteration). With ``kill_after`` the process SIGKILLs itself at the end of that iteration, before
its checkpoint is written.
"""

from __future__ import annotations

import json
import os
import signal

from d2lite.config import get_cfg
from d2lite.extras.synthetic import TRASH_CLASSES
from d2lite.engine import DefaultTrainer, HookBase
from d2lite.model_zoo import get_config_file
from d2lite.utils.env import seed_all_rng


class _LossRecorder(HookBase):
    """Appends ``{"iteration": i, loss: value, ...}`` with the unsmoothed losses of each step."""

    def __init__(self, path: str) -> None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self._file = open(path, "a")

    def after_step(self) -> None:
        it = self.trainer.iter
        latest = self.trainer.storage.latest()
        losses = {k: v for k, (v, i) in latest.items() if "loss" in k and i == it}
        # json writes floats with repr, which round-trips them exactly.
        self._file.write(json.dumps({"iteration": it, **losses}) + "\n")
        self._file.flush()


class _Killer(HookBase):
    def __init__(self, kill_after: int) -> None:
        self._kill_after = kill_after

    def after_step(self) -> None:
        if self.trainer.iter == self._kill_after:
            os.kill(os.getpid(), signal.SIGKILL)


class _Trainer(DefaultTrainer):
    kill_after = -1

    def build_hooks(self):
        # First, so the losses are recorded and the kill comes before this step's checkpoint.
        recorder = _LossRecorder(os.path.join(self.cfg.OUTPUT_DIR, "losses.jsonl"))
        return [recorder, _Killer(self.kill_after)] + super().build_hooks()


def make_cfg(out_dir: str, dataset: str, num_workers: int, max_iter: int, seed: int):
    cfg = get_cfg()
    cfg.merge_from_file(get_config_file("tiny/faster_rcnn_tiny.yaml"))
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = len(TRASH_CLASSES)
    cfg.DATASETS.TRAIN = (dataset,)
    cfg.DATALOADER.NUM_WORKERS = num_workers
    # Random crops: more random augmentation to reproduce.
    cfg.INPUT.CROP.ENABLED = True
    cfg.INPUT.CROP.SIZE = [0.5, 1.0]
    cfg.SOLVER.MAX_ITER = max_iter
    cfg.SOLVER.WARMUP_ITERS = 2
    cfg.SOLVER.STEPS = (max_iter // 2,)
    cfg.SOLVER.CHECKPOINT_PERIOD = 1
    cfg.SEED = seed
    cfg.OUTPUT_DIR = out_dir
    return cfg


def train_tiny(
    out_dir: str, dataset: str, num_workers: int, max_iter: int, seed: int, kill_after: int = -1
) -> None:
    """Trains (or resumes) the tiny model on the registered ``dataset``, seeded with ``seed``."""
    cfg = make_cfg(out_dir, dataset, num_workers, max_iter, seed)
    seed_all_rng(cfg.SEED)
    _Trainer.kill_after = kill_after
    trainer = _Trainer(cfg)
    trainer.resume_or_load(resume=True)
    trainer.train()
