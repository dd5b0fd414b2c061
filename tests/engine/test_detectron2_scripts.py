"""Shapes of public Detectron2 user code, with only the import prefix changed, on d2lite.

Each test is written the way such scripts are: a custom event writer reading EventStorage,
a trainer with its own build_hooks and evaluation, a DatasetMapper with a list of
augmentations, a predictor on a config with typos. They run the tiny model for a few
iterations on the synthetic trash data.
"""
from __future__ import annotations

import json
import os

import numpy as np
import torch

import d2lite.data.transforms as T
from d2lite.checkpoint import DetectionCheckpointer
from d2lite.config import get_cfg
from d2lite.data import DatasetCatalog, DatasetMapper, build_detection_train_loader
from d2lite.extras.synthetic import TRASH_CLASSES
from d2lite.engine import DefaultPredictor, DefaultTrainer, hooks
from d2lite.evaluation import COCOEvaluator
from d2lite.model_zoo import get_config_file
from d2lite.utils.events import EventWriter, get_event_storage


def _cfg(tmp_path, trash_datasets, max_iter=3):
    cfg = get_cfg()
    cfg.merge_from_file(get_config_file("tiny/faster_rcnn_tiny.yaml"))
    cfg.DATASETS.TRAIN = (trash_datasets["train"],)
    cfg.DATASETS.TEST = (trash_datasets["val"],)
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = len(TRASH_CLASSES)
    cfg.SOLVER.MAX_ITER = max_iter
    cfg.SOLVER.WARMUP_ITERS = 1
    cfg.OUTPUT_DIR = str(tmp_path / "out")
    return cfg


class SmoothedLossWriter(EventWriter):
    """A user's writer: reads the storage the way public writers do (its private fields too)."""

    def __init__(self, path):
        self.path = path

    def write(self):
        storage = get_event_storage()
        latest = storage.latest_with_smoothing_hint(20)
        row = {
            "iter": storage.iter,
            "total_loss": latest["total_loss"][0],
            "median_of_history": storage.histories()["total_loss"].median(20),
            "lr_seen_at": storage._latest_scalars["lr"][1],
            "n_points": len(storage._history["total_loss"].values()),
        }
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")


def test_custom_writer_added_through_build_writers(tmp_path, trash_datasets):
    out = tmp_path / "mine.jsonl"

    class Trainer(DefaultTrainer):
        def build_writers(self):
            return super().build_writers() + [SmoothedLossWriter(str(out))]

    cfg = _cfg(tmp_path, trash_datasets)
    cfg.MODEL.RETINANET.NUM_CLASSES = len(TRASH_CLASSES)  # a habit of course scripts: no effect
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    # Detectron2 gives the same (checked with it): the final write, after training, sees
    # storage.iter == MAX_ITER, with the scalars of the last step.
    assert rows[-1]["iter"] == 3 and rows[-1]["n_points"] == 3
    assert rows[-1]["lr_seen_at"] == 2
    assert np.isfinite(rows[-1]["total_loss"]) and rows[-1]["total_loss"] == rows[-1]["median_of_history"]


def test_trainer_with_its_own_build_hooks_and_evaluation(tmp_path, trash_datasets):
    seen = []

    class Trainer(DefaultTrainer):
        @classmethod
        def build_evaluator(cls, cfg, dataset_name, output_folder=None):
            folder = output_folder or os.path.join(cfg.OUTPUT_DIR, "inference")
            return COCOEvaluator(dataset_name, cfg, False, folder)

        def build_hooks(self):
            hook_list = super().build_hooks()
            hook_list.insert(
                -1,
                hooks.BestCheckpointer(
                    self.cfg.TEST.EVAL_PERIOD, self.checkpointer, "bbox/AP50", "max"
                ),
            )
            hook_list.append(hooks.CallbackHook(after_step=lambda t: seen.append(t.iter)))
            return hook_list

    cfg = _cfg(tmp_path, trash_datasets, max_iter=2)
    cfg.TEST.EVAL_PERIOD = 1
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    assert seen == [0, 1]
    out = tmp_path / "out"
    assert (out / "model_best.pth").exists()
    lines = [json.loads(x) for x in (out / "metrics.json").read_text().splitlines()]
    # As in Detectron2 (checked with it): the evaluation due at the last step runs after
    # training, and is recorded at iteration MAX_ITER.
    assert [x["iteration"] for x in lines if "bbox/AP50" in x] == [0, 2]


def test_dataset_mapper_with_an_augmentation_list(tmp_path, trash_datasets):
    cfg = _cfg(tmp_path, trash_datasets, max_iter=2)
    seen_sizes = []

    class Trainer(DefaultTrainer):
        @classmethod
        def build_train_loader(cls, cfg):
            augs = [T.Resize((48, 56)), T.RandomFlip(prob=0.5), T.NoOpTransform()]
            mapper = DatasetMapper(cfg, is_train=True, augmentations=augs)

            def recording_mapper(d):
                out = mapper(d)
                seen_sizes.append(tuple(out["image"].shape[1:]))
                return out

            return build_detection_train_loader(cfg, mapper=recording_mapper)

    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    assert seen_sizes and set(seen_sizes) == {(48, 56)}


def test_predictor_on_a_config_with_typos_warns_and_predicts(tmp_path, trash_datasets, caplog):
    cfg = _cfg(tmp_path, trash_datasets, max_iter=1)
    model = DefaultTrainer.build_model(cfg)
    DetectionCheckpointer(model, save_dir=str(tmp_path)).save("model")
    cfg.MODEL.WEIGHTS = str(tmp_path / "model.pth")
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.0
    cfg.DATALOADER.NUM_WOREKRS = 4  # typos from a course script
    cfg.SOLVER.BASR_LR = 0.01
    predictor = DefaultPredictor(cfg)
    assert "DATALOADER.NUM_WOREKRS Did you mean DATALOADER.NUM_WORKERS?" in caplog.text
    assert "SOLVER.BASR_LR Did you mean SOLVER.BASE_LR?" in caplog.text
    first = DatasetCatalog.get(trash_datasets["val"])[0]
    from d2lite.data.detection_utils import read_image

    outputs = predictor(read_image(first["file_name"], format="BGR"))["instances"]
    assert outputs.image_size == (first["height"], first["width"])
    boxes = outputs.pred_boxes.tensor.cpu().numpy()
    assert boxes.shape[1] == 4 and torch.is_tensor(outputs.scores)
