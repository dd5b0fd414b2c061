"""Trains a detector with an explicit loop instead of ``DefaultTrainer`` and hooks.

Everything the hooks do (LR schedule, checkpoints, metric writers, periodic evaluation) is
written out in ``do_train``, so this file is the place to start when the training loop itself
must change. ``tools/plain_train_net.py`` runs it with the arguments of ``d2lite train`` (its
docstring has an example).
"""

from __future__ import annotations

import argparse
import logging
import os
from collections import OrderedDict
from collections.abc import Sequence

import torch
from fvcore.common.checkpoint import PeriodicCheckpointer

from d2lite.checkpoint import DetectionCheckpointer
from d2lite.config import CfgNode
from d2lite.data import build_detection_test_loader, build_detection_train_loader
from d2lite.engine import create_ddp_model, default_writers
from d2lite.evaluation import inference_on_dataset, print_csv_format
from d2lite.extras.reports import build_coco_evaluator
from d2lite.modeling import build_model
from d2lite.solver import build_lr_scheduler, build_optimizer
from d2lite.utils import comm
from d2lite.utils.events import EventStorage
from d2lite.utils.file_io import safe_output_path
from d2lite.utils.run_summary import save_model_description

from .common import launch_from_args
from .train_net import get_parser, setup

__all__ = ["get_evaluator", "do_test", "do_train", "get_parser", "setup", "main", "invoke_main"]

logger = logging.getLogger(__name__)


def get_evaluator(cfg: CfgNode, dataset_name: str, output_folder: str | None = None):
    """A ``COCOEvaluator`` for datasets whose metadata ``evaluator_type`` is "coco" or unset,
    as ``tools/train_net.py``'s ``Trainer.build_evaluator``."""
    # USER: return your own DatasetEvaluator here for other data.
    return build_coco_evaluator(cfg, dataset_name, output_folder)


def do_test(cfg: CfgNode, model: torch.nn.Module) -> dict:
    """Evaluates ``model`` on every dataset of ``DATASETS.TEST``."""
    results: OrderedDict = OrderedDict()
    for dataset_name in cfg.DATASETS.TEST:
        data_loader = build_detection_test_loader(cfg, dataset_name)
        # A dataset name is data: it must not lead outside OUTPUT_DIR ("../x").
        output_folder = safe_output_path(os.path.join(cfg.OUTPUT_DIR, "inference"), dataset_name)
        evaluator = get_evaluator(cfg, dataset_name, output_folder)
        results[dataset_name] = inference_on_dataset(model, data_loader, evaluator)
        if comm.is_main_process():
            logger.info("Evaluation results for %s in csv format:", dataset_name)
            print_csv_format(results[dataset_name])
    return list(results.values())[0] if len(results) == 1 else results


def do_train(cfg: CfgNode, model: torch.nn.Module, resume: bool = False) -> None:
    """Trains ``model`` from iteration 0, or from the last checkpoint if ``resume``."""
    model.train()
    optimizer = build_optimizer(cfg, model)
    scheduler = build_lr_scheduler(cfg, optimizer)
    checkpointer = DetectionCheckpointer(
        model, cfg.OUTPUT_DIR, optimizer=optimizer, scheduler=scheduler
    )
    checkpoint = checkpointer.resume_or_load(cfg.MODEL.WEIGHTS, resume=resume)
    # MODEL.WEIGHTS may be another run's checkpoint; only a resume continues its iteration count.
    resuming = resume and checkpointer.has_checkpoint()
    start_iter = checkpoint.get("iteration", -1) + 1 if resuming else 0
    max_iter = cfg.SOLVER.MAX_ITER
    periodic_checkpointer = PeriodicCheckpointer(
        checkpointer, cfg.SOLVER.CHECKPOINT_PERIOD, max_iter=max_iter
    )
    writers = default_writers(cfg.OUTPUT_DIR, max_iter) if comm.is_main_process() else []
    data_loader = build_detection_train_loader(cfg)
    logger.info("Starting training from iteration %d", start_iter)
    with EventStorage(start_iter) as storage:
        for data, iteration in zip(data_loader, range(start_iter, max_iter)):
            storage.iter = iteration
            loss_dict = model(data)
            losses = sum(loss_dict.values())
            if not torch.isfinite(losses).all():
                raise FloatingPointError(
                    f"Loss became infinite or NaN at iteration={iteration}!\n"
                    f"loss_dict = {loss_dict}"
                )
            reduced = {k: v.item() for k, v in comm.reduce_dict(loss_dict).items()}
            if comm.is_main_process():
                storage.put_scalars(total_loss=sum(reduced.values()), **reduced)

            optimizer.zero_grad()
            losses.backward()
            optimizer.step()
            storage.put_scalar("lr", optimizer.param_groups[0]["lr"], smoothing_hint=False)
            scheduler.step()

            last = iteration == max_iter - 1
            if cfg.TEST.EVAL_PERIOD > 0 and (iteration + 1) % cfg.TEST.EVAL_PERIOD == 0:
                if not last:  # the final evaluation is main()'s
                    _periodic_test(cfg, model, storage)
            if (iteration + 1) % 20 == 0 or last:
                for writer in writers:
                    writer.write()
            periodic_checkpointer.step(iteration)
        for writer in writers:
            writer.close()


def _periodic_test(cfg: CfgNode, model: torch.nn.Module, storage: EventStorage) -> None:
    """Evaluates during training and puts the results in the storage for the writers."""
    results = do_test(cfg, model)
    if comm.is_main_process() and results:
        storage.put_scalars(**_flatten(results), smoothing_hint=False)
    # Workers finish evaluating at different times; start the next iteration together.
    comm.synchronize()


def _flatten(results: dict, prefix: str = "") -> dict[str, float]:
    flat: dict[str, float] = {}
    for k, v in results.items():
        if isinstance(v, dict):
            flat.update(_flatten(v, f"{prefix}{k}/"))
        else:
            flat[f"{prefix}{k}"] = float(v)
    return flat


def main(args: argparse.Namespace):
    """Trains (unless ``args.eval_only``), then evaluates; returns the evaluation results."""
    cfg = setup(args)
    model = build_model(cfg)
    # Once, and not on the terminal: log.txt at DEBUG and OUTPUT_DIR/model.txt, as DefaultTrainer.
    logger.debug("Model:\n%s", model)
    if comm.is_main_process() and cfg.OUTPUT_DIR:
        save_model_description(model, cfg.OUTPUT_DIR)
    if args.eval_only:
        DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(
            cfg.MODEL.WEIGHTS, resume=args.resume
        )
        return do_test(cfg, model)
    model = create_ddp_model(model, broadcast_buffers=False)
    do_train(cfg, model, resume=args.resume)
    return do_test(cfg, model)


def invoke_main(argv: Sequence[str] | None = None) -> None:
    """The command line (``d2lite train``'s arguments): parses ``argv`` and launches ``main``."""
    args = get_parser().parse_args(argv)
    launch_from_args(main, args)
