"""``d2lite train`` and ``d2lite eval``: Detectron2's ``tools/train_net.py``, as a module.

Examples::

    d2lite train --config-file tiny/faster_rcnn_tiny_trash.yaml \\
        --dataset train=data/train.json:data --dataset test=data/test.json:data OUTPUT_DIR out
    d2lite eval --config-file out/config.yaml MODEL.WEIGHTS out/model_final.pth
    d2lite train --config-file cfg.yaml --num-gpus 2   # two processes (GPUs or CPU)
    d2lite train --config-file cfg.yaml --resume       # continue a killed run

The training itself is ``DefaultTrainer``; ``d2lite.cli.plain_train_net`` spells out the
same loop without hooks. ``tools/train_net.py`` runs this module.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Sequence

from d2lite.checkpoint import DetectionCheckpointer
from d2lite.config import CfgNode
from d2lite.engine import DefaultTrainer, default_argument_parser, default_setup, hooks
from d2lite.evaluation import verify_results
from d2lite.extras.reports import build_coco_evaluator
from d2lite.modeling import GeneralizedRCNNWithTTA
from d2lite.utils import comm

from .common import (
    add_dataset_argument,
    format_results,
    launch_from_args,
    load_config,
    resolve_config_file,
)

__all__ = ["Trainer", "get_parser", "setup", "main", "invoke_main", "invoke_eval"]

logger = logging.getLogger(__name__)

_EPILOG = """Examples:
  d2lite train --config-file C.yaml --dataset train=data/train.json:data/images \\
      --dataset test=data/test.json:data/images OUTPUT_DIR out
  d2lite train --config-file C.yaml --resume          # continue the run in OUTPUT_DIR
  d2lite train --config-file C.yaml --num-gpus 2      # 2 processes (NCCL on GPUs, Gloo on CPU)
  d2lite eval --config-file out/config.yaml MODEL.WEIGHTS out/model_final.pth

--config-file takes a file or a model-zoo name (e.g. COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml).
Trailing KEY VALUE pairs override the config (e.g. SOLVER.MAX_ITER 500 MODEL.DEVICE cpu).
"""


class Trainer(DefaultTrainer):
    """``DefaultTrainer`` with an evaluator, as in Detectron2's ``train_net.py`` (its own
    ``build_evaluator`` raises NotImplementedError, and then nothing is evaluated).

    # USER: override build_train_loader here for your own data mapper.
    """

    @classmethod
    def build_evaluator(cls, cfg: CfgNode, dataset_name: str, output_folder: str | None = None):
        """A ``COCOEvaluator`` writing to ``output_folder`` (``OUTPUT_DIR/inference`` when None),
        for datasets whose metadata ``evaluator_type`` is "coco" or unset."""
        # USER: return your own DatasetEvaluator here for other data.
        return build_coco_evaluator(cfg, dataset_name, output_folder)

    @classmethod
    def test_with_TTA(cls, cfg: CfgNode, model) -> OrderedDict:
        """Evaluates ``model`` with test-time augmentation (``TEST.AUG.*``); results get "_TTA"."""
        logger.info("Running inference with test-time augmentation ...")
        model = GeneralizedRCNNWithTTA(cfg, model)
        folder = os.path.join(cfg.OUTPUT_DIR, "inference_TTA")
        evaluators = [
            cls.build_evaluator(cfg, name, output_folder=folder) for name in cfg.DATASETS.TEST
        ]
        res = cls.test(cfg, model, evaluators)
        return OrderedDict((k + "_TTA", v) for k, v in res.items())


def get_parser(eval_only: bool = False) -> argparse.ArgumentParser:
    """Detectron2's ``default_argument_parser`` plus ``--dataset``."""
    parser = default_argument_parser(epilog=_EPILOG)
    parser.description = (
        "Evaluate a trained detector on DATASETS.TEST (MODEL.WEIGHTS)."
        if eval_only
        else "Train (or with --eval-only, evaluate) a detector from a config file."
    )
    add_dataset_argument(parser)
    if not eval_only:
        parser.add_argument(
            "--from-scratch",
            action="store_true",
            help="train the ResNet from random weights: MODEL.WEIGHTS '', a norm that learns "
            "(GN, or BN with 16+ images per device) and FREEZE_AT 0; KEY VALUE overrides win; "
            "the schedule is yours to lengthen (about 3x a fine-tuning one)",
        )
    return parser


def setup(args: argparse.Namespace) -> CfgNode:
    """Builds the config (file, ``KEY VALUE`` overrides, ``--dataset``), then default_setup.

    ``args`` may come from Detectron2's ``default_argument_parser`` (without ``--dataset``).
    """
    if args.config_file:
        # default_setup logs the file's contents: give it the file a model-zoo name stands for.
        args.config_file = resolve_config_file(args.config_file)
    cfg = load_config(
        args.config_file,
        args.opts,
        getattr(args, "dataset", None) or [],
        training=not args.eval_only,
        from_scratch=getattr(args, "from_scratch", False),
    )
    default_setup(cfg, args)
    return cfg


def main(args: argparse.Namespace):
    """Trains, or evaluates with ``args.eval_only``; returns the evaluation results."""
    start = time.perf_counter()
    cfg = setup(args)
    if args.eval_only:
        model = Trainer.build_model(cfg)
        DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(
            cfg.MODEL.WEIGHTS, resume=args.resume
        )
        res = Trainer.test(cfg, model)
        if cfg.TEST.AUG.ENABLED:
            res.update(Trainer.test_with_TTA(cfg, model))
        if comm.is_main_process():
            verify_results(cfg, res)
            _print_summary(cfg, res, start, trained=False)
        return res
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    if cfg.TEST.AUG.ENABLED:
        trainer.register_hooks(
            [hooks.EvalHook(0, lambda: trainer.test_with_TTA(cfg, trainer.model))]
        )
    trainer.train()
    # DefaultTrainer.train() returns the results only with TEST.EXPECTED_RESULTS (Detectron2's
    # rule); this tool returns the final evaluation in every case, as its --eval-only does.
    if comm.is_main_process():
        _print_summary(cfg, trainer._last_eval_results, start, trained=True)
    return trainer._last_eval_results


def _print_summary(cfg: CfgNode, results: dict | None, start: float, trained: bool) -> None:
    """The user-facing end of a run: what came out and where it is."""
    out = os.path.abspath(cfg.OUTPUT_DIR)
    what = f"training ({cfg.SOLVER.MAX_ITER} iterations)" if trained else "evaluation"
    lines = ["", f"d2lite {what} finished in {time.perf_counter() - start:.0f} s"]
    lines += format_results(results)
    if trained:
        lines += [
            f"model weights:  {os.path.join(out, 'model_final.pth')}",
            f"config:         {os.path.join(out, 'config.yaml')} (for d2lite eval / predict)",
            f"training log:   {os.path.join(out, 'log.txt')} (and metrics.json, TensorBoard)",
        ]
    if results:
        lines.append(f"evaluation:     {os.path.join(out, 'inference')}")
    print("\n".join(lines))


def invoke_main(argv: Sequence[str] | None = None, eval_only: bool = False) -> None:
    """The command line: parses ``argv`` (default: ``sys.argv[1:]``) and launches ``main``."""
    args = get_parser(eval_only).parse_args(argv)
    args.eval_only = args.eval_only or eval_only
    launch_from_args(main, args)


def invoke_eval(argv: Sequence[str] | None = None) -> None:
    """``d2lite eval``: ``d2lite train --eval-only``."""
    invoke_main(argv, eval_only=True)
