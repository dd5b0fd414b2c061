"""`make demo` (``tools/demo.py``): train a detector from scratch on synthetic trash data, on a
CPU, in minutes.

1. Writes the synthetic trash dataset to ``$D2LITE_DATASETS/trash`` (default
   ``datasets/trash``) unless it is already there, and registers it as ``coco_trash_{train,
   val,test}``, the names the config uses.
2. Trains ``model_zoo/Trash-Demo/faster_rcnn_R_18_FPN_trash_cpu.yaml`` with the ``Trainer`` of
   ``d2lite train`` (``DefaultTrainer`` plus the COCO evaluator).
3. Evaluates on ``coco_trash_val`` (COCO AP table in the log).
4. Draws the predictions on a few val images, predicts the whole test split into a submission
   CSV, and prints where everything is.

Extra ``KEY VALUE`` arguments override the config, e.g. ``SOLVER.MAX_ITER 100``.
"""
from __future__ import annotations

import argparse
import logging
import os
import time

from d2lite import model_zoo
from d2lite.config import get_cfg
from d2lite.config.training_checks import check_training_settings
from d2lite.data.datasets import get_builtin_root, register_coco_instances
from d2lite.engine import default_setup
from d2lite.extras.synthetic import make_trash_dataset
from d2lite.extras.trash import TRASH_CLASSES, TRASH_DATASETS
from d2lite.utils.file_io import safe_output_path

from . import predict
from .common import format_results
from .train_net import Trainer

__all__ = ["get_parser", "ensure_dataset", "output_paths", "write_predictions", "main"]

logger = logging.getLogger(__name__)

DEMO_CONFIG = "Trash-Demo/faster_rcnn_R_18_FPN_trash_cpu.yaml"


def get_parser() -> argparse.ArgumentParser:
    """The arguments of the demo."""
    parser = argparse.ArgumentParser(
        description="Train a detector from scratch on synthetic trash data, on a CPU, in minutes."
    )
    parser.add_argument(
        "--config-file", default=model_zoo.get_config_file(DEMO_CONFIG), metavar="FILE"
    )
    parser.add_argument("--num-train", type=int, default=500, help="synthetic training images")
    parser.add_argument("--num-val", type=int, default=100, help="synthetic validation images")
    parser.add_argument("--num-test", type=int, default=40, help="synthetic test images")
    parser.add_argument("--num-pictures", type=int, default=8, help="val images to draw")
    parser.add_argument(
        "opts", nargs=argparse.REMAINDER, default=[], help="config overrides: KEY VALUE pairs"
    )
    return parser


def ensure_dataset(args: argparse.Namespace) -> str:
    """Returns the trash dataset directory, writing the synthetic data there if it is missing,
    and registers it.

    Raises:
        AssertionError: if the process already registered a ``coco_trash_*`` name with other
            files (``register_coco_instances`` names both).
    """
    root = get_builtin_root()
    data_dir = os.path.abspath(os.path.join(root, "trash"))
    if all(os.path.isfile(os.path.join(data_dir, f"{s}.json")) for s in ("train", "val", "test")):
        logger.info(f"Using the existing dataset in {data_dir}")
    else:
        logger.info(f"Writing the synthetic trash dataset to {data_dir}")
        make_trash_dataset(
            data_dir,
            num_train=args.num_train,
            num_val=args.num_val,
            num_test=args.num_test,
            image_size=256,
            seed=0,
        )
    for name, split in TRASH_DATASETS.items():
        json_file = os.path.join(data_dir, f"{split}.json")
        register_coco_instances(name, {"thing_classes": TRASH_CLASSES}, json_file, data_dir)
    return data_dir


def output_paths(output_dir: str) -> dict[str, str]:
    """The demo's outputs in ``output_dir``, checked before anything is written.

    Raises:
        ValueError: if one of them leads outside ``output_dir`` through a symlink, naming it.
    """
    names = {
        "inference": "inference",
        "pictures": "pictures",
        "val_csv": "pictures/val_predictions.csv",
        "test": "test_predictions",
        "csv": "submission.csv",
    }
    out = {key: safe_output_path(output_dir, name) for key, name in names.items()}
    # The checkpointer replaces model_final.pth atomically, so a symlink there is not followed.
    out["weights"] = os.path.join(output_dir, "model_final.pth")
    return out


def write_predictions(args: argparse.Namespace, data_dir: str, out: dict[str, str]) -> None:
    """Draws predictions on a few val images and predicts the test split into the CSV."""
    common = ["--config-file", args.config_file]
    overrides = [*args.opts, "MODEL.WEIGHTS", out["weights"]]
    val_names = sorted(os.listdir(os.path.join(data_dir, "val")))[: args.num_pictures]
    val_images = [os.path.join(data_dir, "val", name) for name in val_names]
    predict.main(
        [*common, "--input", *val_images, "--output", out["pictures"], "--csv", out["val_csv"]]
        + overrides
    )
    test_json = os.path.join(data_dir, "test.json")
    predict.main(
        [*common, "--input", test_json, "--output", out["test"], "--csv", out["csv"]] + overrides
    )


def main(argv: list[str] | None = None) -> dict | None:
    """Runs the demo; returns the evaluation results (``{"bbox": {"AP": ...}}``)."""
    args = get_parser().parse_args(argv)
    start = time.perf_counter()
    cfg = get_cfg()
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    # Absolute paths, so the summary says where things are whatever the reader's directory.
    cfg.OUTPUT_DIR = os.path.abspath(cfg.OUTPUT_DIR)
    check_training_settings(cfg)  # before config.yaml is saved, so it holds what trains
    cfg.freeze()
    out = output_paths(cfg.OUTPUT_DIR)  # before training, so a bad output folder costs no time
    default_setup(cfg, args)
    data_dir = ensure_dataset(args)

    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=False)
    train_start = time.perf_counter()
    trainer.train()  # evaluates on DATASETS.TEST after the last iteration
    results = trainer._last_eval_results
    train_time = time.perf_counter() - train_start
    write_predictions(args, data_dir, out)

    logs = os.path.join(cfg.OUTPUT_DIR, "log.txt")
    lines = [
        "",
        "=" * 70,
        f"d2lite demo finished in {time.perf_counter() - start:.0f} s "
        f"(training and evaluation {train_time:.0f} s, {cfg.SOLVER.MAX_ITER} iterations)",
        *format_results(results),
        f"dataset:            {data_dir}",
        f"model weights:      {out['weights']}",
        f"training log:       {logs} (and metrics.json, TensorBoard events)",
        f"evaluation:         {out['inference']}",
        f"val predictions:    {os.path.join(out['pictures'], 'val')}",
        f"test predictions:   {os.path.join(out['test'], 'test')}",
        f"submission CSV:     {out['csv']}",
        "=" * 70,
    ]
    print("\n".join(lines))
    return results

