"""Per-iteration learning-rate schedules.

The schedule is a pure function of training progress (an fvcore ``ParamScheduler`` mapping
``where = iter / max_iter`` in [0, 1] to a multiplier), wrapped into a torch ``LRScheduler``
(:class:`LRMultiplier`) that the trainer steps once per iteration. Keeping the schedule
stateless means a checkpoint only needs ``last_epoch`` and ``base_lrs`` to resume it.

``LRScheduler`` is torch's scheduler base class, exported under the name Detectron2 gives it.
"""

from __future__ import annotations

import logging
import math
from bisect import bisect_right

import torch
from fvcore.common.param_scheduler import (
    CompositeParamScheduler,
    ConstantParamScheduler,
    LinearParamScheduler,
    ParamScheduler,
)
from torch.optim.lr_scheduler import LRScheduler

__all__ = [
    "LRScheduler",
    "WarmupParamScheduler",
    "LRMultiplier",
    "WarmupMultiStepLR",
    "WarmupCosineLR",
]

logger = logging.getLogger(__name__)

_WARMUP_METHODS = ("linear", "constant")


class WarmupParamScheduler(CompositeParamScheduler):
    """Adds a warm-up phase in front of another scheduler.

    During warm-up the multiplier starts at ``warmup_factor * scheduler(0)`` and either stays
    there ("constant") or rises linearly ("linear") to the value ``scheduler`` takes over with:
    ``scheduler(warmup_length)`` when it keeps its own time axis, ``scheduler(0)`` when it is
    rescaled to start after warm-up.
    """

    def __init__(
        self,
        scheduler: ParamScheduler,
        warmup_factor: float,
        warmup_length: float,
        warmup_method: str = "linear",
        rescale_interval: bool = False,
    ) -> None:
        """
        Args:
            scheduler (ParamScheduler): the schedule after warm-up.
            warmup_factor (float): multiplier of ``scheduler(0)`` at the first iteration.
            warmup_length (float): fraction of training spent warming up, in [0, 1].
            warmup_method (str): "linear" or "constant". Defaults to "linear".
            rescale_interval (bool): if True, ``scheduler`` is stretched over the remaining
                ``1 - warmup_length`` of training instead of starting at ``warmup_length``.
                Defaults to False.
        """
        if warmup_method not in _WARMUP_METHODS:
            raise ValueError(
                f"Unknown warmup method: {warmup_method!r}; choose one of {_WARMUP_METHODS}"
            )
        # Rescaled, the schedule restarts at its own beginning when warm-up ends.
        end_value = scheduler(0.0) if rescale_interval else scheduler(warmup_length)
        start_value = warmup_factor * scheduler(0.0)
        if warmup_method == "constant":
            warmup = ConstantParamScheduler(start_value)
        else:
            warmup = LinearParamScheduler(start_value, end_value)
        super().__init__(
            [warmup, scheduler],
            interval_scaling=["rescaled", "rescaled" if rescale_interval else "fixed"],
            lengths=[warmup_length, 1 - warmup_length],
        )


class LRMultiplier(LRScheduler):
    """A torch ``LRScheduler`` setting ``lr = base_lr * multiplier(iter / max_iter)``.

    Step it once per iteration (not per epoch), after ``optimizer.step()``. The trainer's
    final step reaches ``where == 1``, so an end value (``SOLVER.BASE_LR_END``) is the LR
    after the last iteration; stepping further is outside the schedule (fvcore raises for
    most schedules there, as in Detectron2).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        multiplier: ParamScheduler,
        max_iter: int,
        last_iter: int = -1,
    ) -> None:
        """
        Args:
            optimizer (Optimizer): the optimizer whose param groups' "lr" is set.
            multiplier (ParamScheduler): maps progress in [0, 1] to an LR multiplier.
            max_iter (int): total number of iterations.
            last_iter (int): the iteration of the last completed step, -1 for a fresh run.
                Defaults to -1.
        """
        if not isinstance(multiplier, ParamScheduler):
            raise ValueError(
                "LRMultiplier(multiplier=) must be an fvcore ParamScheduler, "
                f"got {type(multiplier).__name__}"
            )
        self._multiplier = multiplier
        self._max_iter = max_iter
        super().__init__(optimizer, last_epoch=last_iter)

    def state_dict(self) -> dict:
        # The multiplier is a pure function rebuilt from the config, so only the position in
        # training is state; this also keeps checkpoints loadable with weights_only=True.
        return {"base_lrs": list(self.base_lrs), "last_epoch": self.last_epoch}

    def get_lr(self) -> list[float]:
        multiplier = self._multiplier(self.last_epoch / self._max_iter)
        return [base_lr * multiplier for base_lr in self.base_lrs]


class _LegacyWarmupLR(LRScheduler):
    """The warm-up of Detectron2's legacy schedulers, which multiply it by their decay."""

    def _warmup_factor(self) -> float:
        """Multiplier of the warm-up at the current iteration."""
        method = self.warmup_method
        if self.last_epoch >= self.warmup_iters:
            return 1.0
        if method == "constant":
            return self.warmup_factor
        if method == "linear":
            alpha = self.last_epoch / self.warmup_iters
            return self.warmup_factor * (1 - alpha) + alpha
        raise ValueError(f"Unknown warmup method: {method!r}; choose one of {_WARMUP_METHODS}")


class WarmupMultiStepLR(_LegacyWarmupLR):
    """Legacy Detectron2 multi-step schedule with warm-up; prefer :class:`LRMultiplier`."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        milestones: list[int],
        gamma: float = 0.1,
        warmup_factor: float = 0.001,
        warmup_iters: int = 1000,
        warmup_method: str = "linear",
        last_epoch: int = -1,
    ) -> None:
        """
        Args:
            optimizer (Optimizer): the optimizer to schedule.
            milestones (list[int]): increasing iterations at which the LR is multiplied by gamma.
            gamma (float): decay factor. Defaults to 0.1.
            warmup_factor (float): LR multiplier at iteration 0. Defaults to 0.001.
            warmup_iters (int): warm-up length in iterations. Defaults to 1000.
            warmup_method (str): "linear" or "constant". Defaults to "linear".
            last_epoch (int): last completed iteration. Defaults to -1.
        """
        if list(milestones) != sorted(milestones):
            raise ValueError(f"Milestones should be increasing integers, got {milestones}")
        self.milestones = list(milestones)
        self.gamma = gamma
        self.warmup_factor = warmup_factor
        self.warmup_iters = warmup_iters
        self.warmup_method = warmup_method
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        warmup = self._warmup_factor()
        decay = self.gamma ** bisect_right(self.milestones, self.last_epoch)
        return [base_lr * warmup * decay for base_lr in self.base_lrs]


class WarmupCosineLR(_LegacyWarmupLR):
    """Legacy Detectron2 half-cosine schedule (to 0 at ``max_iters``) with warm-up."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        max_iters: int,
        warmup_factor: float = 0.001,
        warmup_iters: int = 1000,
        warmup_method: str = "linear",
        last_epoch: int = -1,
    ) -> None:
        """
        Args:
            optimizer (Optimizer): the optimizer to schedule.
            max_iters (int): iteration at which the LR reaches 0.
            warmup_factor (float): LR multiplier at iteration 0. Defaults to 0.001.
            warmup_iters (int): warm-up length in iterations. Defaults to 1000.
            warmup_method (str): "linear" or "constant". Defaults to "linear".
            last_epoch (int): last completed iteration. Defaults to -1.
        """
        self.max_iters = max_iters
        self.warmup_factor = warmup_factor
        self.warmup_iters = warmup_iters
        self.warmup_method = warmup_method
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        warmup = self._warmup_factor()
        cosine = 0.5 * (1.0 + math.cos(math.pi * self.last_epoch / self.max_iters))
        return [base_lr * warmup * cosine for base_lr in self.base_lrs]
