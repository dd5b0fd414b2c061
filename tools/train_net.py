#!/usr/bin/env python
"""Trains or evaluates a detector from a config file, as Detectron2's ``tools/train_net.py``.

Examples:
    python tools/train_net.py --config-file model_zoo/tiny/faster_rcnn_tiny.yaml \\
        DATASETS.TRAIN '("trash_train",)' OUTPUT_DIR output/tiny
    python tools/train_net.py --config-file cfg.yaml --eval-only MODEL.WEIGHTS output/model_final.pth
    python tools/train_net.py --config-file cfg.yaml --num-gpus 2   # two processes (GPUs or CPU)

The training itself is ``DefaultTrainer``; ``tools/plain_train_net.py`` spells out the same
loop without hooks.
"""

from __future__ import annotations

import logging
import os
import sys
from collections import OrderedDict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from d2lite.checkpoint import DetectionCheckpointer  # noqa: E402
from d2lite.config import CfgNode, get_cfg  # noqa: E402
from d2lite.engine import (  # noqa: E402
    DefaultTrainer,
    default_argument_parser,
    default_setup,
    hooks,
    launch,
)
from d2lite.evaluation import build_coco_evaluator, verify_results  # noqa: E402
from d2lite.modeling import GeneralizedRCNNWithTTA  # noqa: E402
from d2lite.utils import comm  # noqa: E402

logger = logging.getLogger("d2lite")


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
        evaluators = [cls.build_evaluator(cfg, name, output_folder=folder) for name in cfg.DATASETS.TEST]
        res = cls.test(cfg, model, evaluators)
        return OrderedDict((k + "_TTA", v) for k, v in res.items())


def setup(args) -> CfgNode:
    """Builds the config from the file and command-line overrides, then runs default_setup."""
    cfg = get_cfg()
    if args.config_file:
        cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.freeze()
    default_setup(cfg, args)
    return cfg


def main(args):
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
    return trainer._last_eval_results


def invoke_main() -> None:
    args = default_argument_parser().parse_args()
    print("Command Line Args:", args)
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )


if __name__ == "__main__":
    invoke_main()
