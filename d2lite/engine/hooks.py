"""Hooks for ``TrainerBase``: timing, LR schedule, checkpoints, evaluation, validation loss,
precise BN, early stopping, writers and (from ``profiling_hooks``) profiling.

A periodic hook acts after iteration ``it`` when ``HookBase.is_due(period)``: when
``(it + 1) % period == 0`` and after the last iteration. The evaluation due at the last
iteration runs in ``after_train``, only when ``trainer.outcome`` is "finished". Hooks run in
registration order; ``DefaultTrainer.build_hooks`` documents it.
"""

from __future__ import annotations

import datetime
import itertools
import logging
import math
import operator
import time
from collections import Counter
from collections.abc import Mapping
from typing import Callable, Iterable

import torch
from fvcore.common.checkpoint import PeriodicCheckpointer as _PeriodicCheckpointer
from fvcore.common.param_scheduler import ParamScheduler
from fvcore.common.timer import Timer
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from d2lite.evaluation.testing import flatten_results_dict
from d2lite.solver import LRMultiplier
from d2lite.utils import comm
from d2lite.utils.events import EventStorage, EventWriter

from .profiling_hooks import AutogradProfiler, TorchMemoryStats, TorchProfiler
from .train_loop import FINISHED, STOPPED, HookBase, sum_losses
from .train_state import (
    bn_modules_in_training,
    fork_rng,
    frozen_bn,
    get_data_loader_state,
    load_data_loader_state,
)

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


def _best_so_far(mode: str, hook: str) -> Callable[[float, float | None], bool]:
    """Returns ``improves(value, best)`` for a metric that improves upwards (``mode`` "max")
    or downwards ("min"): whether ``value`` is a new best; a NaN or infinite one never is
    (no baseline, no improvement). Shared by ``BestCheckpointer`` and ``EarlyStopping``.

    Raises:
        ValueError: for another ``mode``, naming ``hook``.
    """
    if mode not in ("max", "min"):
        raise ValueError(f"{hook} mode must be 'max' or 'min', got {mode!r}.")
    better = operator.gt if mode == "max" else operator.lt
    return lambda value, best: math.isfinite(value) and (best is None or better(value, best))


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
            speed = f"{_duration(steps_time)} ({steps_time / num_iter:.4f} s / it)"
            logger.info(f"Overall training speed: {num_iter} iterations in {speed}")
        hooks_time = _duration(total_time - steps_time)
        logger.info(f"Total training time: {_duration(total_time)} ({hooks_time} on hooks)")

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


def _duration(seconds: float) -> datetime.timedelta:
    return datetime.timedelta(seconds=int(seconds))


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
        for writer in self._writers:
            if self.is_due(writer.period or self._period):
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
        # fvcore's step saves on the iterations is_due names; this keeps one rule in sight.
        if self.is_due(self.period):
            self.step(self.trainer.iter)

    def after_train(self) -> None:
        # A finished run saved model_final at its last step; a failed one saves nothing.
        if self.trainer.outcome == STOPPED:
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
        self._improves = _best_so_far(mode, "BestCheckpointer")
        self._period = eval_period
        self._val_metric = val_metric
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
        improves, best = self._improves(value, self.best_metric), self.best_metric
        if best is None:
            if improves:
                logger.info(f"Saved first model at {value:0.5f} @ {metric_iter} steps")
        else:
            # Detectron2's messages, which log parsers may read.
            score = f"latest eval score for {self._val_metric} is {value:0.5f}"
            best = f"best score {best:0.5f} @ iteration {self.best_iter}."
            if improves:
                logger.info(f"Saved best model as {score}, better than last {best}")
            else:
                logger.info(f"Not saving as {score}, not better than {best}")
        if improves:
            self.best_metric, self.best_iter = value, metric_iter
            self._checkpointer.save(self._file_prefix, iteration=metric_iter)

    def after_step(self) -> None:
        if self.is_due(self._period, last=False):
            self._best_checking()

    def after_train(self) -> None:
        if self.trainer.outcome == FINISHED:
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
        # Resolved once, here; before training (a resume loads its state) the property looks.
        self._scheduler = self.scheduler
        if isinstance(self._scheduler, ParamScheduler):
            # A bare fvcore schedule (as in Detectron2's LazyConfig recipes) maps progress in
            # [0, 1) to a multiplier; LRMultiplier turns it into a per-iteration LR scheduler.
            max_iter, last_iter = self.trainer.max_iter, self.trainer.iter - 1
            self._scheduler = LRMultiplier(self._optimizer, self._scheduler, max_iter, last_iter)
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
        self._scheduler.step()

    @property
    def scheduler(self):
        """The scheduler given, else ``trainer.scheduler`` (an fvcore ``ParamScheduler`` has
        no state: its ``LRMultiplier`` starts at the trainer's iteration)."""
        return self._scheduler or self.trainer.scheduler

    def state_dict(self) -> dict:
        scheduler = self.scheduler
        return scheduler.state_dict() if hasattr(scheduler, "state_dict") else {}

    def load_state_dict(self, state_dict: dict) -> None:
        scheduler = self.scheduler
        if hasattr(scheduler, "load_state_dict"):
            logger.info("Loading scheduler from state_dict ...")
            scheduler.load_state_dict(state_dict)


class EvalHook(HookBase):
    """Runs ``eval_function`` every ``eval_period`` iterations and after the last one, and puts
    its results, flattened to ``bbox/AP`` style names, in the storage for writers and for
    ``BestCheckpointer``/``EarlyStopping``.

    Args:
        eval_period (int): iterations between evaluations; 0 evaluates only after training.
        eval_function (Callable[[], dict]): returns nested dicts of numbers; called on every
            rank (evaluation is distributed), rank 0's results are used.
        eval_after_train (bool): also evaluate after the last iteration. Defaults to True.
    """

    def __init__(
        self, eval_period: int, eval_function: Callable[[], Mapping], eval_after_train=True
    ):
        self._period = eval_period
        self._func = eval_function
        self._eval_after_train = eval_after_train

    def _do_eval(self) -> None:
        # Under fork_rng: a test loader draws its seed from torch's RNG, and the training's
        # random streams must not depend on whether (or how often) it is evaluated.
        with fork_rng():
            results = self._func()
        if comm.get_world_size() > 1:
            # Evaluators return results on rank 0 only; sharing them keeps the decisions of
            # EarlyStopping identical on every rank.
            results = comm.all_gather(results)[0]
        if results:
            if not isinstance(results, Mapping):
                raise TypeError(f"Eval function must return a dict. Got {results!r} instead.")
            flat = flatten_results_dict(results)
            for k, v in flat.items():
                try:
                    flat[k] = float(v)
                except (TypeError, ValueError) as e:
                    raise ValueError(
                        "[EvalHook] eval_function should return a nested dict of float. "
                        f"Got '{k}: {v!r}' instead."
                    ) from e
            self.trainer.storage.put_scalars(**flat, smoothing_hint=False)
        # Workers finish evaluating at different times; start the next iteration together.
        comm.synchronize()

    def after_step(self) -> None:
        if self.is_due(self._period, last=False):
            self._do_eval()

    def after_train(self) -> None:
        # Not after a stopped run (nothing new to evaluate) nor a failed one (a NaN model).
        if self._eval_after_train and self.trainer.outcome == FINISHED:
            self._do_eval()
        # The function is usually a closure over the trainer; drop it to break the cycle.
        del self._func


class PreciseBN(HookBase):
    """Recomputes BatchNorm statistics on ``num_iter`` training batches every ``period``
    iterations and after the last one (a no-op for models without BN in training mode).

    Register it before ``EvalHook`` so the evaluation sees the new statistics.

    Args:
        period (int): iterations between updates; 0 only after training.
        model (nn.Module): the model.
        data_loader (Iterable): yields training batches.
        num_iter (int): batches per update.
    """

    def __init__(self, period: int, model: nn.Module, data_loader: Iterable, num_iter: int):
        self._disabled = len(bn_modules_in_training(model)) == 0
        if self._disabled:
            logger.info("PreciseBN is disabled: the model has no BN layers in training mode.")
        self._model = model
        self._data_loader = data_loader
        self._num_iter = num_iter
        self._period = period
        self._data_iter = None

    def after_step(self) -> None:
        if self.is_due(self._period):
            self.update_stats()

    def update_stats(self) -> None:
        """Runs the model on ``num_iter`` batches and replaces the BN running statistics."""
        if self._disabled:
            return
        if self._data_iter is None:
            self._data_iter = iter(self._data_loader)
        batches = (next(self._data_iter) for _ in itertools.count())
        # Imported here: fvcore.nn scripts its losses with TorchScript on import (slow, noisy).
        from fvcore.nn.precise_bn import update_bn_stats

        logger.info("Running precise-BN for %d iterations...", self._num_iter)
        # A throwaway storage: scalars the model logs here are not training statistics; and
        # the training's random streams continue as if this had not run.
        with EventStorage(), fork_rng():
            update_bn_stats(self._model, batches, self._num_iter)

    def state_dict(self) -> dict:
        """The position of its data loader, when the loader can save one: a resumed run then
        recomputes the statistics on the batches the uninterrupted one would have used."""
        state = get_data_loader_state(self._data_loader)
        return {} if state is None else {"data_loader": state}

    def load_state_dict(self, state_dict: dict) -> None:
        if load_data_loader_state(self._data_loader, state_dict.get("data_loader")):
            self._data_iter = None


class ValidationLoss(HookBase):
    """Computes the training losses on held-out data every ``period`` iterations and puts
    their mean as ``val_total_loss`` and ``val_<loss>``.

    The model runs in training mode (losses need ground truth) under ``torch.no_grad()``, with
    BatchNorm statistics frozen and the RNG state restored afterwards, so validating does not
    change the training run.

    Args:
        model (nn.Module): the model (a DDP wrapper is unwrapped).
        data_loader (Iterable): yields batches with ground truth; iterated from the start at
            each validation. Must be finite unless ``num_batches`` is set.
        period (int): iterations between validations.
        num_batches (int | None): batches per validation. Defaults to None (the whole loader).
    """

    def __init__(self, model: nn.Module, data_loader: Iterable, period: int, num_batches=None):
        if period <= 0:
            raise ValueError(f"ValidationLoss period must be positive, got {period}.")
        self._model = model.module if isinstance(model, DistributedDataParallel) else model
        self._data_loader = data_loader
        self._period = period
        self._num_batches = num_batches

    def after_step(self) -> None:
        if self.is_due(self._period):
            self.trainer.storage.put_scalars(**self.compute(), smoothing_hint=False)

    def compute(self) -> dict[str, float]:
        """Returns ``{"val_total_loss": ..., "val_<loss>": ...}`` averaged over the batches."""
        sums: dict[str, float] = {}
        num = 0
        batches = itertools.islice(self._data_loader, self._num_batches)
        with torch.no_grad(), frozen_bn(self._model), fork_rng():
            with EventStorage():  # the model's own scalars are not training statistics
                for data in batches:
                    total, loss_dict = sum_losses(self._model(data))
                    for k, v in {"total_loss": total, **loss_dict}.items():
                        sums[k] = sums.get(k, 0.0) + float(v)
                    num += 1
        if num == 0:
            raise ValueError("ValidationLoss: the validation data loader yielded no batch.")
        means = {k: v / num for k, v in sums.items()}
        means = {
            k: sum(d[k] for d in comm.all_gather(means)) / comm.get_world_size() for k in means
        }
        return {f"val_{k}": v for k, v in means.items()}


class EarlyStopping(HookBase):
    """Stops training when ``metric`` has not improved for ``patience`` evaluations.

    Register it after the ``EvalHook`` (or ``ValidationLoss``) that puts the metric. Stopping
    ends the loop after the current iteration; after_train hooks still run and
    ``PeriodicCheckpointer`` writes the final checkpoint.

    Args:
        metric (str): name in the storage, e.g. "bbox/AP" or "val_total_loss".
        patience (int): evaluations without improvement before stopping.
        mode (str): "max" or "min": which way the metric improves. Defaults to "max".
    """

    def __init__(self, metric: str, patience: int, mode: str = "max") -> None:
        self._improves = _best_so_far(mode, "EarlyStopping")
        if patience < 1:
            raise ValueError(f"EarlyStopping patience must be at least 1, got {patience}.")
        self._metric = metric
        self._patience = patience
        self.best: float | None = None
        self.num_bad = 0
        self._last_seen_iter: int | None = None

    def after_step(self) -> None:
        entry = self.trainer.storage.latest().get(self._metric)
        if entry is None or entry[1] == self._last_seen_iter:
            return
        value, self._last_seen_iter = entry
        if self._improves(value, self.best):
            self.best, self.num_bad = value, 0
            return
        self.num_bad += 1
        if self.num_bad >= self._patience:
            logger.info(
                f"Early stopping at iteration {self.trainer.iter}: {self._metric} has not "
                f"improved on {self.best} for {self.num_bad} evaluations."
            )
            self.trainer.stop()

    def state_dict(self) -> dict:
        return {"best": self.best, "num_bad": self.num_bad}

    def load_state_dict(self, state_dict: dict) -> None:
        self.best = state_dict.get("best")
        self.num_bad = state_dict.get("num_bad", 0)
