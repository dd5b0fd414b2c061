"""Builders for the optimizer (with optional gradient clipping) and the LR schedule."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from enum import Enum
from typing import Any

import torch
from fvcore.common.param_scheduler import (
    CosineParamScheduler,
    MultiStepParamScheduler,
    ParamScheduler,
    StepWithFixedGammaParamScheduler,
)
from torch import nn

from d2lite.config import CfgNode

from .lr_scheduler import LRMultiplier, LRScheduler, WarmupParamScheduler

__all__ = [
    "GradientClipType",
    "LRScheduler",
    "build_optimizer",
    "build_lr_scheduler",
    "get_default_optimizer_params",
    "maybe_add_gradient_clipping",
    "reduce_param_groups",
]

logger = logging.getLogger(__name__)

_OPTIMIZERS = ("SGD", "AdamW")
_LR_SCHEDULERS = ("WarmupMultiStepLR", "WarmupCosineLR", "WarmupStepWithFixedGammaLR")

# Parameters of these modules get WEIGHT_DECAY_NORM: decaying a norm layer's scale towards 0
# fights the normalisation itself.
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
_INSTANCE_NORMS = (nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)
_OTHER_NORMS = (nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)
_NORM_MODULE_TYPES = _BATCH_NORMS + _INSTANCE_NORMS + _OTHER_NORMS


class GradientClipType(Enum):
    """Values of ``SOLVER.CLIP_GRADIENTS.CLIP_TYPE``."""

    VALUE = "value"
    NORM = "norm"
    FULL_MODEL = "full_model"


def _make_clipper(clip_cfg: CfgNode) -> tuple[Callable[[Any], Any], bool]:
    """Returns ``(clip_fn, per_param)`` for a ``SOLVER.CLIP_GRADIENTS`` node."""
    choices = [t.value for t in GradientClipType]
    if clip_cfg.CLIP_TYPE not in choices:
        raise ValueError(
            f"Unknown SOLVER.CLIP_GRADIENTS.CLIP_TYPE {clip_cfg.CLIP_TYPE!r}; "
            f"choose one of {choices}"
        )
    clip_type = GradientClipType(clip_cfg.CLIP_TYPE)
    value, norm_type = float(clip_cfg.CLIP_VALUE), float(clip_cfg.NORM_TYPE)
    if clip_type == GradientClipType.VALUE:
        return (lambda p: torch.nn.utils.clip_grad_value_(p, value)), True
    if clip_type == GradientClipType.NORM:
        return (lambda p: torch.nn.utils.clip_grad_norm_(p, value, norm_type)), True
    return (lambda ps: torch.nn.utils.clip_grad_norm_(ps, value, norm_type)), False


def _optimizer_class_with_clipping(
    optimizer_type: type[torch.optim.Optimizer], clipper: Callable[[Any], Any], per_param: bool
) -> type[torch.optim.Optimizer]:
    """Subclasses ``optimizer_type`` so that ``step`` clips gradients first."""

    def step(self, closure=None):
        if per_param:
            for group in self.param_groups:
                for p in group["params"]:
                    clipper(p)
        else:
            clipper(list(itertools.chain(*[g["params"] for g in self.param_groups])))
        return super(new_type, self).step(closure)

    new_type = type(optimizer_type.__name__ + "WithGradientClip", (optimizer_type,), {"step": step})
    return new_type


def maybe_add_gradient_clipping(
    cfg: CfgNode, optimizer: type[torch.optim.Optimizer] | torch.optim.Optimizer
) -> type[torch.optim.Optimizer] | torch.optim.Optimizer:
    """Makes an optimizer clip gradients in ``step`` if ``SOLVER.CLIP_GRADIENTS.ENABLED``.

    Clipping lives in the optimizer so that the training loop stays unaware of it. "value"
    clamps every gradient element to [-CLIP_VALUE, CLIP_VALUE], "norm" rescales each
    parameter's gradient to norm <= CLIP_VALUE, "full_model" rescales all gradients together
    so that their joint norm is <= CLIP_VALUE.

    Args:
        cfg (CfgNode): the full config.
        optimizer (type[Optimizer] | Optimizer): an optimizer class, or an instance whose class
            is swapped in place.

    Returns:
        type[Optimizer] | Optimizer: the clipping class, or the same instance, or the input
            unchanged when clipping is disabled.
    """
    clip_cfg = cfg.SOLVER.CLIP_GRADIENTS
    if not clip_cfg.ENABLED:
        return optimizer
    is_instance = isinstance(optimizer, torch.optim.Optimizer)
    optimizer_type = type(optimizer) if is_instance else optimizer
    if not (isinstance(optimizer_type, type) and issubclass(optimizer_type, torch.optim.Optimizer)):
        raise TypeError(f"Expected a torch Optimizer class or instance, got {optimizer!r}")
    clipper, per_param = _make_clipper(clip_cfg)
    new_type = _optimizer_class_with_clipping(optimizer_type, clipper, per_param)
    if is_instance:
        optimizer.__class__ = new_type
        return optimizer
    return new_type


def get_default_optimizer_params(
    model: torch.nn.Module,
    base_lr: float | None = None,
    weight_decay: float | None = None,
    weight_decay_norm: float | None = None,
    bias_lr_factor: float | None = 1.0,
    weight_decay_bias: float | None = None,
    lr_factor_func: Callable[[str], float] | None = None,
    overrides: dict[str, dict[str, float]] | None = None,
) -> list[dict[str, Any]]:
    """Param groups with per-parameter hyper-parameters, merged where they are equal.

    Frozen parameters (``requires_grad=False``) and parameters shared between modules (seen
    twice) are left out.

    Args:
        model (nn.Module): the model.
        base_lr (float | None): "lr" of every group; None leaves it to the optimizer default.
        weight_decay (float | None): "weight_decay" of every group; None leaves it to the
            optimizer default.
        weight_decay_norm (float | None): weight decay of norm layers' parameters. Defaults to
            None (same as the others).
        bias_lr_factor (float | None): "lr" of parameters named "bias" is
            ``base_lr * bias_lr_factor``. Defaults to 1.0.
        weight_decay_bias (float | None): weight decay of biases. Defaults to None (same as the
            others).
        lr_factor_func (Callable[[str], float] | None): multiplies ``base_lr`` for the parameter
            with this full name. Defaults to None.
        overrides (dict[str, dict[str, float]] | None): hyper-parameters for parameters with a
            given local name (e.g. ``{"embedding": {"weight_decay": 0.0}}``). Defaults to None.

    Returns:
        list[dict]: param groups for a torch optimizer.
    """
    overrides = dict(overrides or {})
    defaults = {k: v for k, v in (("lr", base_lr), ("weight_decay", weight_decay)) if v is not None}
    bias_overrides: dict[str, float] = {}
    if bias_lr_factor is not None and bias_lr_factor != 1.0:
        if base_lr is None:
            raise ValueError("bias_lr_factor requires base_lr")
        bias_overrides["lr"] = base_lr * bias_lr_factor
    if weight_decay_bias is not None:
        bias_overrides["weight_decay"] = weight_decay_bias
    if bias_overrides:
        if "bias" in overrides:
            raise ValueError("Conflicting overrides for 'bias' (also set by bias_lr_factor)")
        overrides["bias"] = bias_overrides
    if lr_factor_func is not None and base_lr is None:
        raise ValueError("lr_factor_func requires base_lr")

    params: list[dict[str, Any]] = []
    seen: set[torch.nn.Parameter] = set()
    for module_name, module in model.named_modules():
        for param_name, value in module.named_parameters(recurse=False):
            if not value.requires_grad or value in seen:
                continue
            seen.add(value)
            hyperparams = dict(defaults)
            if isinstance(module, _NORM_MODULE_TYPES) and weight_decay_norm is not None:
                hyperparams["weight_decay"] = weight_decay_norm
            if lr_factor_func is not None:
                hyperparams["lr"] *= lr_factor_func(f"{module_name}.{param_name}")
            hyperparams.update(overrides.get(param_name, {}))
            params.append({"params": [value], **hyperparams})
    return reduce_param_groups(params)


def _expand_param_groups(params: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One group per parameter, in first-seen order, with the union of its groups' settings.

    A parameter listed in several groups takes later groups' values where they disagree. A
    group's optional ``param_names`` (aligned with its ``params``) follows each parameter.
    """
    per_param: dict[Any, dict[str, Any]] = {}
    for item in params:
        if "params" not in item:
            raise ValueError(f"Param group without 'params': {sorted(item)}")
        hyperparams = {k: v for k, v in item.items() if k not in ("params", "param_names")}
        names = item.get("param_names")
        for i, param in enumerate(item["params"]):
            entry = per_param.setdefault(param, {"params": [param]})
            if names is not None:
                entry["param_names"] = [names[i]]
            entry.update(hyperparams)
    return list(per_param.values())


def reduce_param_groups(params: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merges param groups with identical hyper-parameters, keeping first-seen order.

    A parameter listed in several groups gets the union of their hyper-parameters (later ones
    win), so the result has each parameter exactly once. Few groups matter for speed: torch's
    multi-tensor ("foreach") optimizers batch the update over the parameters of a group.
    """
    groups: dict[tuple, dict[str, Any]] = {}
    for item in _expand_param_groups(params):
        hyperparams = tuple((k, v) for k, v in item.items() if k not in ("params", "param_names"))
        group = groups.setdefault(hyperparams, {**dict(hyperparams), "params": []})
        group["params"] += item["params"]
        if "param_names" in item:
            group.setdefault("param_names", []).extend(item["param_names"])
    return list(groups.values())


def build_optimizer(cfg: CfgNode, model: torch.nn.Module) -> torch.optim.Optimizer:
    """Builds ``SOLVER.OPTIMIZER`` ("SGD" or "AdamW") over the model's default param groups."""
    solver = cfg.SOLVER
    if solver.OPTIMIZER not in _OPTIMIZERS:
        raise ValueError(
            f"Unknown SOLVER.OPTIMIZER {solver.OPTIMIZER!r}; choose one of {_OPTIMIZERS}"
        )
    params = get_default_optimizer_params(
        model,
        base_lr=solver.BASE_LR,
        weight_decay_norm=solver.WEIGHT_DECAY_NORM,
        bias_lr_factor=solver.BIAS_LR_FACTOR,
        weight_decay_bias=solver.WEIGHT_DECAY_BIAS,
    )
    if not params:
        raise ValueError("build_optimizer: the model has no trainable parameters")
    if solver.OPTIMIZER == "SGD":
        # One multi-tensor update per param group, as Detectron2 builds it.
        extra = dict(momentum=solver.MOMENTUM, nesterov=solver.NESTEROV, foreach=True)
    else:
        extra = dict(betas=(0.9, 0.999))
    optimizer_type = maybe_add_gradient_clipping(cfg, getattr(torch.optim, solver.OPTIMIZER))
    return optimizer_type(params, lr=solver.BASE_LR, weight_decay=solver.WEIGHT_DECAY, **extra)


class _StepWithFixedGammaToTheEnd(StepWithFixedGammaParamScheduler):
    """fvcore's fixed-gamma step schedule that keeps its last value at ``where >= 1``.

    fvcore's version raises IndexError at ``where == 1``, which the LR scheduler hook reaches
    after the final iteration: in Detectron2 that step crashes training before the final
    checkpoint is written. The LR set by that step is never used, so holding the last value
    changes no LR that a training run uses.
    """

    def __call__(self, where: float) -> float:
        # Any point of the last of the num_decays + 1 equal intervals gives the last value.
        return super().__call__(min(where, self.num_decays / (self.num_decays + 1)))


def _checked_steps(steps: tuple[int, ...], max_iter: int) -> list[int]:
    """The ``SOLVER.STEPS`` a multi-step schedule uses, or a ValueError naming the keys.

    As in Detectron2, steps above ``MAX_ITER`` are dropped with a warning, and the rest must be
    strictly increasing, positive and below ``MAX_ITER``: Detectron2 fails on those too, inside
    fvcore's ``MultiStepParamScheduler``, with a message that names no config key.
    """
    beyond = tuple(x for x in steps if x > max_iter)
    if beyond:
        logger.warning(
            f"SOLVER.STEPS {steps}: the values {beyond} are larger than SOLVER.MAX_ITER "
            f"({max_iter}) and are ignored, as in Detectron2."
        )
    kept = [x for x in steps if x <= max_iter]
    if max_iter in kept:
        raise ValueError(
            f"SOLVER.STEPS {steps} contains {max_iter}, which equals SOLVER.MAX_ITER "
            f"({max_iter}): a step at the end of training never applies; lower or remove it "
            "(Detectron2 fails on it too)."
        )
    if any(b <= a for a, b in zip([0] + kept, kept)):
        raise ValueError(
            f"SOLVER.STEPS {steps} must be strictly increasing iterations above 0 "
            f"(and below SOLVER.MAX_ITER {max_iter})."
        )
    return kept


def _build_multiplier(cfg: CfgNode) -> ParamScheduler:
    """The schedule (before warm-up) named by ``SOLVER.LR_SCHEDULER_NAME``."""
    solver = cfg.SOLVER
    name = solver.LR_SCHEDULER_NAME
    if name == "WarmupMultiStepLR":
        steps = _checked_steps(tuple(solver.STEPS), solver.MAX_ITER)
        return MultiStepParamScheduler(
            values=[solver.GAMMA**k for k in range(len(steps) + 1)],
            milestones=steps,
            num_updates=solver.MAX_ITER,
        )
    if name == "WarmupCosineLR":
        end_value = solver.BASE_LR_END / solver.BASE_LR
        if not 0.0 <= end_value <= 1.0:
            raise ValueError(
                f"SOLVER.BASE_LR_END ({solver.BASE_LR_END}) must lie in [0, SOLVER.BASE_LR "
                f"({solver.BASE_LR})]"
            )
        return CosineParamScheduler(1.0, end_value)
    if name == "WarmupStepWithFixedGammaLR":
        return _StepWithFixedGammaToTheEnd(
            base_value=1.0,
            gamma=solver.GAMMA,
            num_decays=solver.NUM_DECAYS,
            num_updates=solver.MAX_ITER,
        )
    raise ValueError(f"Unknown SOLVER.LR_SCHEDULER_NAME {name!r}; choose one of {_LR_SCHEDULERS}")


def build_lr_scheduler(cfg: CfgNode, optimizer: torch.optim.Optimizer) -> LRMultiplier:
    """Builds the per-iteration LR scheduler described by ``cfg.SOLVER``."""
    solver = cfg.SOLVER
    sched = WarmupParamScheduler(
        _build_multiplier(cfg),
        solver.WARMUP_FACTOR,
        min(solver.WARMUP_ITERS / solver.MAX_ITER, 1.0),
        solver.WARMUP_METHOD,
        solver.RESCALE_INTERVAL,
    )
    return LRMultiplier(optimizer, multiplier=sched, max_iter=solver.MAX_ITER)
