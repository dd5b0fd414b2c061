"""Hooks for ``TrainerBase``: timing, LR schedule, checkpoints, evaluation, writers, profiling.

Periodic hooks act after iteration ``it`` when ``(it + 1) % period == 0`` and after the last
iteration. Hooks run in registration order; ``DefaultTrainer.build_hooks`` documents it.
"""

from __future__ import annotations

import datetime
import logging
import math
import operator
import time
from collections import Counter
from typing import Callable, Iterable

import torch
from fvcore.common.checkpoint import PeriodicCheckpointer as _PeriodicCheckpointer
from fvcore.common.param_scheduler import ParamScheduler
from fvcore.common.timer import Timer

from d2lite.solver import LRMultiplier
from d2lite.utils.events import EventStorage, EventWriter  # noqa: F401  (Detectron2 has it here)

from .eval_hooks import (
    EarlyStopping,
    EvalHook,
    PreciseBN,
    ValidationLoss,
    _due_before_last_iter,
    flatten_results_dict,
)
from .profiling_hooks import AutogradProfiler, TorchMemoryStats, TorchProfiler
from .train_loop import HookBase

__all__ = [
    "CallbackHook",
    "IterationTimer",
    "PeriodicWriter",
    "PeriodicCheckpointer",
    "BestCheckpointer",
    "LRScheduler",
    "AutogradProfiler",
    "TorchProfiler",
    "TorchMemoryStats",
    "EvalHook",
    "PreciseBN",
    "ValidationLoss",
    "EarlyStopping",
    "flatten_results_dict",
]

logger = logging.getLogger(__name__)


class CallbackHook(HookBase):
    """Runs the given functions, each called with the trainer, at the matching points."""

    def __init__(
        self,
        *,
        before_train: Callable | None = None,
        after_train: Callable | None = None,
        before_step: Callable | None = None,
        after_step: Callable | None = None,
    ) -> None:
        self._before_train = before_train
        self._after_train = after_train
        self._before_step = before_step
        self._after_step = after_step

    def before_train(self) -> None:
        if self._before_train:
            self._before_train(self.trainer)

    def after_train(self) -> None:
        if self._after_train:
            self._after_train(self.trainer)
        # The callables are often closures over the trainer; drop them to break the cycle.
        del self._before_train, self._after_train, self._before_step, self._after_step

    def before_step(self) -> None:
        if self._before_step:
            self._before_step(self.trainer)

    def after_step(self) -> None:
        if self._after_step:
            self._after_step(self.trainer)


class IterationTimer(HookBase):
    """Puts the duration of each step as ``time`` and logs the total time at the end.

    Register it first, so the time of the other hooks' ``before_step`` is not counted.

    Args:
        warmup_iter (int): first iterations left out of the average (they are slow).
            Defaults to 3.
    """

    def __init__(self, warmup_iter: int = 3) -> None:
        self._warmup_iter = warmup_iter
        self._step_timer = Timer()
        self._start_time = time.perf_counter()
        self._total_timer = Timer()

    def before_train(self) -> None:
        self._start_time = time.perf_counter()
        self._total_timer.reset()
        self._total_timer.pause()

    def after_train(self) -> None:
        total_time = time.perf_counter() - self._start_time
        steps_time = self._total_timer.seconds()
        num_iter = self.trainer.storage.iter + 1 - self.trainer.start_iter - self._warmup_iter
        if num_iter > 0 and steps_time > 0:
            logger.info(
                "Overall training speed: %d iterations in %s (%.4f s / it)",
                num_iter,
                datetime.timedelta(seconds=int(steps_time)),
                steps_time / num_iter,
            )
        logger.info(
            "Total training time: %s (%s on hooks)",
            datetime.timedelta(seconds=int(total_time)),
            datetime.timedelta(seconds=int(total_time - steps_time)),
        )

    def before_step(self) -> None:
        self._step_timer.reset()
        self._total_timer.resume()

    def after_step(self) -> None:
        iter_done = self.trainer.storage.iter - self.trainer.start_iter + 1
        if iter_done >= self._warmup_iter:
            self.trainer.storage.put_scalars(time=self._step_timer.seconds())
        else:
            self._start_time = time.perf_counter()
            self._total_timer.reset()
        self._total_timer.pause()


class PeriodicWriter(HookBase):
    """Calls ``write()`` of each writer periodically, and once more before closing them.

    A writer whose ``period`` attribute is set (a progress bar sets 1) is written at its own
    period; the others at this hook's.

    Args:
        writers (list[EventWriter]): the writers.
        period (int): iterations between writes. Defaults to 20.
    """

    def __init__(self, writers: Iterable[EventWriter], period: int = 20) -> None:
        self._writers = list(writers)
        for w in self._writers:
            if not isinstance(w, EventWriter):
                raise TypeError(f"PeriodicWriter takes EventWriters, got {type(w).__name__}.")
        self._period = period

    def after_step(self) -> None:
        it = self.trainer.iter
        last = it == self.trainer.max_iter - 1
        for writer in self._writers:
            period = writer.period or self._period
            if (it + 1) % period == 0 or last:
                writer.write()

    def after_train(self) -> None:
        for writer in self._writers:
            # Other after_train hooks (e.g. the final evaluation) may have put new scalars.
            writer.write()
            writer.close()


class PeriodicCheckpointer(_PeriodicCheckpointer, HookBase):
    """Saves ``{file_prefix}_{iter:07d}`` every ``period`` iterations and ``{file_prefix}_final``
    after the last one (or when training is stopped early). fvcore's, as a hook.

    Args:
        checkpointer: a ``DetectionCheckpointer`` (or fvcore ``Checkpointer``).
        period (int): iterations between checkpoints.
        max_iter (int | None): taken from the trainer. Defaults to None.
        max_to_keep (int | None): keep only this many periodic checkpoints. Defaults to None.
        file_prefix (str): prefix of the file names. Defaults to "model".
    """

    def before_train(self) -> None:
        self.max_iter = self.trainer.max_iter

    def after_step(self) -> None:
        self.step(self.trainer.iter)

    def after_train(self) -> None:
        # Only a stopped (not a failed) run ends before max_iter with a final checkpoint.
        if self.trainer.should_stop and self.trainer.iter < self.trainer.max_iter:
            self.checkpointer.save(f"{self.file_prefix}_final", iteration=self.trainer.iter - 1)


class BestCheckpointer(HookBase):
    """Saves ``{file_prefix}.pth`` whenever ``val_metric`` (put by ``EvalHook``) improves.

    Register it after the ``EvalHook`` that computes the metric, with the same period.

    Args:
        eval_period (int): the evaluation period.
        checkpointer: a ``DetectionCheckpointer``.
        val_metric (str): the metric's name in the storage, e.g. "bbox/AP50".
        mode (str): "max" or "min": which way the metric improves. Defaults to "max".
        file_prefix (str): checkpoint name. Defaults to "model_best".
    """

    def __init__(
        self,
        eval_period: int,
        checkpointer,
        val_metric: str,
        mode: str = "max",
        file_prefix: str = "model_best",
    ) -> None:
        if mode not in ("max", "min"):
            raise ValueError(f"BestCheckpointer mode must be 'max' or 'min', got {mode!r}.")
        self._period = eval_period
        self._val_metric = val_metric
        self._compare = operator.gt if mode == "max" else operator.lt
        self._checkpointer = checkpointer
        self._file_prefix = file_prefix
        self.best_metric: float | None = None
        self.best_iter: int | None = None

    def _best_checking(self) -> None:
        metric_tuple = self.trainer.storage.latest().get(self._val_metric)
        if metric_tuple is None:
            logger.warning(
                "Given val metric %s does not seem to be computed/stored. Will not checkpoint "
                "based on it.",
                self._val_metric,
            )
            return
        value, metric_iter = metric_tuple
        if self.best_metric is None:
            # A NaN or infinite first score is no baseline to improve on.
            if math.isfinite(value):
                self._save(value, metric_iter)
                logger.info("Saved first model at %0.5f @ %d steps", value, metric_iter)
        elif math.isfinite(value) and self._compare(value, self.best_metric):
            logger.info(
                "Saved best model as latest eval score for %s is %0.5f, better than last "
                "best score %0.5f @ iteration %d.",
                self._val_metric,
                value,
                self.best_metric,
                self.best_iter,
            )
            self._save(value, metric_iter)
        else:
            logger.info(
                "Not saving as latest eval score for %s is %0.5f, not better than best score "
                "%0.5f @ iteration %d.",
                self._val_metric,
                value,
                self.best_metric,
                self.best_iter,
            )

    def _save(self, value: float, metric_iter: int) -> None:
        self.best_metric, self.best_iter = value, metric_iter
        self._checkpointer.save(self._file_prefix, iteration=metric_iter)

    def after_step(self) -> None:
        if _due_before_last_iter(self.trainer, self._period):
            self._best_checking()

    def after_train(self) -> None:
        if self.trainer.iter + 1 >= self.trainer.max_iter:
            self._best_checking()

    def state_dict(self) -> dict:
        return {"best_metric": self.best_metric, "best_iter": self.best_iter}

    def load_state_dict(self, state_dict: dict) -> None:
        self.best_metric = state_dict.get("best_metric")
        self.best_iter = state_dict.get("best_iter")


class LRScheduler(HookBase):
    """Puts the learning rate as ``lr`` and steps the LR scheduler after each iteration.

    Args:
        optimizer (torch.optim.Optimizer | None): Defaults to ``trainer.optimizer``.
        scheduler (LRScheduler | ParamScheduler | None): a torch LR scheduler, or an fvcore
            ``ParamScheduler`` of the training progress. Defaults to ``trainer.scheduler``.
    """

    def __init__(self, optimizer=None, scheduler=None) -> None:
        self._optimizer = optimizer
        self._scheduler = scheduler

    def before_train(self) -> None:
        self._optimizer = self._optimizer or self.trainer.optimizer
        self._scheduler = self._scheduler or self.trainer.scheduler
        if isinstance(self._scheduler, ParamScheduler):
            # A bare fvcore schedule (as in Detectron2's LazyConfig recipes) maps progress in
            # [0, 1) to a multiplier; LRMultiplier turns it into a per-iteration LR scheduler.
            self._scheduler = LRMultiplier(
                self._optimizer,
                self._scheduler,
                self.trainer.max_iter,
                last_iter=self.trainer.iter - 1,
            )
        self._best_param_group_id = LRScheduler.get_best_param_group_id(self._optimizer)

    @staticmethod
    def get_best_param_group_id(optimizer: torch.optim.Optimizer) -> int:
        """Returns the group whose LR is reported: the first with the most parameters or, when
        every group holds one parameter, the first with the most common LR (Detectron2's rule).
        """
        groups = optimizer.param_groups
        largest = max(len(g["params"]) for g in groups)
        if largest > 1:
            return next(i for i, g in enumerate(groups) if len(g["params"]) == largest)
        lr = Counter(g["lr"] for g in groups).most_common(1)[0][0]
        return next(i for i, g in enumerate(groups) if g["lr"] == lr)

    def after_step(self) -> None:
        lr = self._optimizer.param_groups[self._best_param_group_id]["lr"]
        self.trainer.storage.put_scalar("lr", lr, smoothing_hint=False)
        self.scheduler.step()

    @property
    def scheduler(self):
        return self._scheduler or self.trainer.scheduler

    def state_dict(self) -> dict:
        return self.scheduler.state_dict() if hasattr(self.scheduler, "state_dict") else {}

    def load_state_dict(self, state_dict: dict) -> None:
        if hasattr(self.scheduler, "load_state_dict"):
            logger.info("Loading scheduler from state_dict ...")
            self.scheduler.load_state_dict(state_dict)
