"""Hooks that measure the model during training: evaluation, validation loss, precise BN and
early stopping. Re-exported by :mod:`d2lite.engine.hooks`, where Detectron2 users look for them.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Mapping
from contextlib import contextmanager
from typing import Callable, Iterable

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from d2lite.utils import comm
from d2lite.utils.events import EventStorage

from ..evaluation.testing import flatten_results_dict
from .train_state import fork_rng, get_data_loader_state, load_data_loader_state
from .train_loop import HookBase, _sum_losses

__all__ = ["EvalHook", "PreciseBN", "ValidationLoss", "EarlyStopping", "flatten_results_dict"]

logger = logging.getLogger(__name__)


def _periodic(trainer, period: int) -> bool:
    it = trainer.iter
    return (it + 1) % period == 0 or it == trainer.max_iter - 1


def _due_before_last_iter(trainer, period: int) -> bool:
    """Whether a periodic evaluation falls on this step; the last one is left to after_train."""
    next_iter = trainer.iter + 1
    return period > 0 and next_iter % period == 0 and next_iter != trainer.max_iter


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
        if _due_before_last_iter(self.trainer, self._period):
            self._do_eval()

    def after_train(self) -> None:
        # iter + 1 < max_iter after a failed or stopped run: nothing new to evaluate then.
        if self._eval_after_train and self.trainer.iter + 1 >= self.trainer.max_iter:
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
        self._disabled = len(_bn_modules_in_training(model)) == 0
        if self._disabled:
            logger.info("PreciseBN is disabled: the model has no BN layers in training mode.")
        self._model = model
        self._data_loader = data_loader
        self._num_iter = num_iter
        self._period = period
        self._data_iter = None

    def after_step(self) -> None:
        next_iter = self.trainer.iter + 1
        if next_iter == self.trainer.max_iter or (
            self._period > 0 and next_iter % self._period == 0
        ):
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


def _bn_modules_in_training(model: nn.Module) -> list[nn.Module]:
    return [
        m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training
    ]


@contextmanager
def _frozen_bn(model: nn.Module):
    """Puts BatchNorm layers in eval mode, so a training-mode forward leaves their stats alone."""
    bns = _bn_modules_in_training(model)
    for m in bns:
        m.eval()
    try:
        yield
    finally:
        for m in bns:
            m.train()


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
        if _periodic(self.trainer, self._period):
            self.trainer.storage.put_scalars(**self.compute(), smoothing_hint=False)

    def compute(self) -> dict[str, float]:
        """Returns ``{"val_total_loss": ..., "val_<loss>": ...}`` averaged over the batches."""
        sums: dict[str, float] = {}
        num = 0
        batches = itertools.islice(self._data_loader, self._num_batches)
        with torch.no_grad(), _frozen_bn(self._model), fork_rng():
            with EventStorage():  # the model's own scalars are not training statistics
                for data in batches:
                    total, loss_dict = _sum_losses(self._model(data))
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
        if mode not in ("max", "min"):
            raise ValueError(f"EarlyStopping mode must be 'max' or 'min', got {mode!r}.")
        if patience < 1:
            raise ValueError(f"EarlyStopping patience must be at least 1, got {patience}.")
        self._metric = metric
        self._patience = patience
        self._mode = mode
        self.best: float | None = None
        self.num_bad = 0
        self._last_seen_iter: int | None = None

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return not math.isnan(value)
        return value > self.best if self._mode == "max" else value < self.best

    def after_step(self) -> None:
        entry = self.trainer.storage.latest().get(self._metric)
        if entry is None or entry[1] == self._last_seen_iter:
            return
        value, self._last_seen_iter = entry
        if self._improved(value):
            self.best, self.num_bad = value, 0
            return
        self.num_bad += 1
        if self.num_bad >= self._patience:
            logger.info(
                "Early stopping at iteration %d: %s has not improved on %s for %d evaluations.",
                self.trainer.iter,
                self._metric,
                self.best,
                self.num_bad,
            )
            self.trainer.stop()

    def state_dict(self) -> dict:
        return {"best": self.best, "num_bad": self.num_bad}

    def load_state_dict(self, state_dict: dict) -> None:
        self.best = state_dict.get("best")
        self.num_bad = state_dict.get("num_bad", 0)
