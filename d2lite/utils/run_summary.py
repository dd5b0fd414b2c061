"""What a training run says about itself before it starts: a short plan at INFO (data,
model, schedule, device, outputs) and the model's architecture in ``OUTPUT_DIR/model.txt``.

The long dumps (environment, full config, architecture) go to files and to ``log.txt`` at
DEBUG, so the first screen of a run shows what will happen rather than 800 lines of repr.
"""

from __future__ import annotations

import os
from typing import Any

from torch import nn
from torch.utils import data as torchdata

from d2lite.config import CfgNode
from d2lite.data.catalog import MetadataCatalog
from d2lite.utils import comm
from d2lite.utils.file_io import atomic_output

__all__ = ["count_parameters", "describe_training", "save_model_description"]

# How many class names the plan lists before "...".
_MAX_CLASS_NAMES = 8


def _unwrap(model: nn.Module) -> nn.Module:
    # DistributedDataParallel and torch.compile keep the user's module here.
    for attr in ("module", "_orig_mod"):
        model = getattr(model, attr, model)
    return model


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """Returns ``(all, trainable)`` parameter counts (shared parameters counted once)."""
    params = list(_unwrap(model).parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def _millions(n: int) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1_000_000 else f"{n:,}"


def save_model_description(model: nn.Module, output_dir: str) -> str:
    """Writes the model's ``repr`` and parameter counts to ``output_dir/model.txt``.

    Returns:
        str: the file's path.
    """
    total, trainable = count_parameters(model)
    path = os.path.join(output_dir, "model.txt")
    with atomic_output(path) as tmp, open(tmp, "w") as f:
        f.write(f"{_unwrap(model)}\n\nParameters: {total:,} ({trainable:,} trainable)\n")
    return path


def _model_name(cfg: CfgNode, model: nn.Module) -> str:
    """``"GeneralizedRCNN (backbone: FPN on ResNet-18)"``; the class names for other models."""
    model = _unwrap(model)
    backbone = getattr(model, "backbone", None)
    if not isinstance(backbone, nn.Module):
        return type(model).__name__
    names = [type(backbone).__name__]
    bottom_up = getattr(backbone, "bottom_up", None)
    if isinstance(bottom_up, nn.Module):
        names.append(type(bottom_up).__name__)
    if names[-1] == "ResNet" and "RESNETS" in cfg.MODEL:
        names[-1] += f"-{cfg.MODEL.RESNETS.DEPTH}"
    return f"{type(model).__name__} (backbone: {' on '.join(names)})"


def _dataset_size(data_loader: Any) -> int | None:
    """The number of images under the training loader (through its ``dataset`` wrappers),
    or None when no map-style dataset is found (an iterable dataset has no length)."""
    obj = data_loader
    for _ in range(8):
        inner = getattr(obj, "dataset", None)
        obj = inner if inner is not None else getattr(obj, "_dataset", None)
        if obj is None:
            return None
        if isinstance(obj, torchdata.Dataset) and not isinstance(obj, torchdata.IterableDataset):
            try:
                return len(obj)
            except TypeError:
                return None
    return None


def _data_line(cfg: CfgNode, data_loader: Any) -> str:
    names = list(cfg.DATASETS.TRAIN)
    size = _dataset_size(data_loader)
    source = ", ".join(names) or "build_train_loader (DATASETS.TRAIN is empty)"
    text = source + (f": {size} images" if size is not None else "")
    if not names:
        return text
    # The training sets share their classes (the loader checks it); the first one names them.
    classes = MetadataCatalog.get(names[0]).get("thing_classes")
    if classes:
        shown = ", ".join(classes[:_MAX_CLASS_NAMES])
        more = ", ..." if len(classes) > _MAX_CLASS_NAMES else ""
        text += f"; {len(classes)} classes ({shown}{more})"
    return text


def _schedule_line(cfg: CfgNode, trainer: Any) -> str:
    s = cfg.SOLVER
    size = _dataset_size(trainer.data_loader)
    todo = trainer.max_iter - trainer.start_iter
    epochs = f" = {todo * s.IMS_PER_BATCH / size:.1f} epochs" if size else ""
    start = f" (resuming at {trainer.start_iter})" if trainer.start_iter else ""
    # Steps past MAX_ITER are ignored (the solver warns); list the ones that happen.
    steps = tuple(x for x in s.STEPS if x < trainer.max_iter)
    steps_text = f", LR steps at {steps}" if steps else ""
    return (
        f"{todo} iterations{start} of {s.IMS_PER_BATCH} images{epochs}; "
        f"{type(trainer.optimizer).__name__}, base LR {s.BASE_LR:g}, "
        f"warmup {s.WARMUP_ITERS}{steps_text}"
    )


def _evaluation_line(cfg: CfgNode, trainer: Any) -> str:
    if not len(cfg.DATASETS.TEST):
        return "none (DATASETS.TEST is empty)"
    # DefaultTrainer's build_evaluator raises; only a subclass that defines its own evaluates.
    if sum("build_evaluator" in vars(c) for c in type(trainer).__mro__) < 2:
        return "none (DefaultTrainer.build_evaluator is not implemented; see tools/train_net.py)"
    when = f"every {cfg.TEST.EVAL_PERIOD} iterations and " if cfg.TEST.EVAL_PERIOD > 0 else ""
    return f"{', '.join(cfg.DATASETS.TEST)} {when}after the last iteration"


def describe_training(trainer: Any) -> str:
    """The plan a ``DefaultTrainer`` logs before its first iteration, e.g.::

        Training plan:
          data:       coco_trash_train: 500 images; 10 classes (General trash, Paper, ...)
          model:      GeneralizedRCNN (backbone: FPN on ResNet-18), 14.3M parameters (...)
          schedule:   300 iterations of 4 images = 2.4 epochs; AdamW, base LR 0.001, ...
          device:     cpu, 1 process
          evaluation: coco_trash_val after the last iteration
          outputs:    /abs/output (metrics.json, model.txt, model_final.pth, ...)

    Args:
        trainer (DefaultTrainer): the trainer, with its ``cfg``, ``model``, ``optimizer``,
            ``data_loader``, ``start_iter`` and ``max_iter``.
    """
    cfg = trainer.cfg
    total, trainable = count_parameters(trainer.model)
    param = next(iter(trainer.model.parameters()), None)
    device = str(param.device) if param is not None else cfg.MODEL.DEVICE
    amp = ", mixed precision (AMP)" if cfg.SOLVER.AMP.ENABLED else ""
    world = comm.get_world_size()
    out = os.path.abspath(cfg.OUTPUT_DIR)
    rows = [
        ("data", _data_line(cfg, trainer.data_loader)),
        ("model", f"{_model_name(cfg, trainer.model)}, {_millions(total)} parameters "
                  f"({_millions(trainable)} trainable); architecture in model.txt"),
        ("schedule", _schedule_line(cfg, trainer)),
        ("device", f"{device}{amp}, {world} process{'es' if world > 1 else ''}"),
        ("evaluation", _evaluation_line(cfg, trainer)),
        ("outputs", f"{out} (metrics.json, model.txt, model_final.pth, training_curves.png, "
                    "...: the README's 'What a run writes' lists them)"),
    ]  # fmt: skip
    return "Training plan:\n" + "\n".join(f"  {k + ':':<11} {v}" for k, v in rows)
