"""The training loop: ``TrainerBase`` runs hooks around ``run_step``; ``SimpleTrainer``
implements the step as data -> losses -> backward -> optimizer step, in mixed precision when
asked (``AMPTrainer`` is Detectron2's name for that). ``is_due`` is the schedule rule of every
periodic hook.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import time
import weakref
from typing import Any, Iterable, Mapping

import numpy as np
import torch
from torch import nn

from d2lite.utils import comm
from d2lite.utils.events import EventStorage, get_event_storage

from .train_state import (
    NO_RNG_STATE,
    get_data_loader_state,
    get_rng_state,
    load_data_loader_state,
    restore_rng_state,
)

__all__ = [
    "HookBase",
    "TrainerBase",
    "SimpleTrainer",
    "AMPTrainer",
    "is_due",
    "sum_losses",
    "FINISHED",
    "STOPPED",
    "FAILED",
]

logger = logging.getLogger(__name__)

# The values of TrainerBase.outcome once train() has ended.
FINISHED, STOPPED, FAILED = "finished", "stopped", "failed"


def is_due(iteration: int, max_iter: int, period: int, *, last: bool = True) -> bool:
    """Whether an action repeated every ``period`` iterations falls after ``iteration``: when
    ``iteration + 1`` is a multiple of ``period`` (never for a period of 0 or less) and after
    the last iteration, ``max_iter - 1``.

    Args:
        last (bool): whether the last iteration is due. False leaves it to ``after_train``,
            where a hook acts only if the training finished (``EvalHook``, ``BestCheckpointer``:
            as in Detectron2, the final evaluation is recorded at ``max_iter``). Defaults to True.
    """
    if iteration == max_iter - 1:
        return last
    return period > 0 and (iteration + 1) % period == 0


class HookBase:
    """A hook runs at fixed points of ``TrainerBase.train``.

    ``self.trainer`` is a weak proxy of the trainer, set by ``register_hooks``. Implement only
    the methods you need; ``before_step`` runs every iteration, so keep it cheap. A hook with
    state that must survive a resume implements ``state_dict``/``load_state_dict``. A periodic
    hook asks ``self.is_due(period)``; in ``after_train``, ``self.trainer.outcome`` says how the
    training ended.
    """

    trainer: "TrainerBase" = None

    def before_train(self) -> None:
        """Called once before the first iteration."""

    def after_train(self) -> None:
        """Called once after the last iteration, also when training failed or was stopped."""

    def before_step(self) -> None:
        """Called before each iteration."""

    def after_backward(self) -> None:
        """Called after the backward pass, before the optimizer step."""

    def after_step(self) -> None:
        """Called after each iteration."""

    def is_due(self, period: int, *, last: bool = True) -> bool:
        """:func:`is_due` at the trainer's current iteration (call it from ``after_step``)."""
        return is_due(self.trainer.iter, self.trainer.max_iter, period, last=last)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state_dict: dict) -> None:
        pass


class TrainerBase:
    """Runs ``run_step`` from ``start_iter`` to ``max_iter`` with hooks around it.

    Attributes:
        iter (int): the current iteration; ``max_iter`` after a loop that finished.
        start_iter (int): the first iteration of this run.
        max_iter (int): the iteration to stop at (exclusive).
        storage (EventStorage): the storage of the running ``train``.
        outcome (str | None): how the last ``train`` ended, set before the ``after_train``
            hooks run: "finished" (every iteration ran), "stopped" (``stop()`` ended it
            early) or "failed" (an exception, e.g. a NaN loss); None until one has ended.
    """

    def __init__(self) -> None:
        self._hooks: list[HookBase] = []
        self.iter: int = 0
        self.start_iter: int = 0
        self.max_iter: int = 0
        self.storage: EventStorage
        self._stop_requested = False
        self.outcome: str | None = None
        # Set by load_state_dict, restored by train() right before the first step.
        self._rng_state_to_restore: dict | str | None = None

    def register_hooks(self, hooks: Iterable[HookBase | None]) -> None:
        """Appends hooks, skipping None; they run in registration order."""
        hooks = [h for h in hooks if h is not None]
        for h in hooks:
            if not isinstance(h, HookBase):
                raise TypeError(f"Hooks must subclass HookBase, got {type(h).__name__}.")
            # A weak proxy, because the trainer owns its hooks and a cycle would keep both alive.
            h.trainer = weakref.proxy(self)
        self._hooks.extend(hooks)

    def stop(self) -> None:
        """Asks the loop to end cleanly after the current iteration (after_train still runs)."""
        self._stop_requested = True

    @property
    def should_stop(self) -> bool:
        return self._stop_requested

    def train(self, start_iter: int, max_iter: int) -> None:
        """Runs iterations ``start_iter .. max_iter - 1``.

        Args:
            start_iter (int): the first iteration (a resumed run starts after its checkpoint).
            max_iter (int): the iteration to stop at (exclusive).
        """
        logger.info("Starting training from iteration %d", start_iter)
        self.iter = self.start_iter = start_iter
        self.max_iter = max_iter
        self._stop_requested = False
        self.outcome = None
        with EventStorage(start_iter) as self.storage:
            try:
                self.before_train()
                # Here, after before_train: the uninterrupted run's next step drew from it too.
                restore_rng_state(self._rng_state_to_restore)
                self._rng_state_to_restore = None
                for self.iter in range(start_iter, max_iter):
                    try:
                        self.before_step()
                        self.run_step()
                        self.after_step()
                    except FloatingPointError as e:
                        raise _diverged(e, self.iter, self.storage) from e
                    if self._stop_requested:
                        logger.info("Training stopped at iteration %d on request.", self.iter)
                        break
                # As in Detectron2, iter == max_iter after a finished loop.
                self.iter += 1
                self.outcome = FINISHED if self.iter >= max_iter else STOPPED
            except Exception:
                logger.exception("Exception during training:")
                raise
            finally:
                # Also for a KeyboardInterrupt: any way out but the loop's end is a failure.
                self.outcome = self.outcome or FAILED
                self.after_train()

    def before_train(self) -> None:
        for h in self._hooks:
            h.before_train()

    def after_train(self) -> None:
        self.storage.iter = self.iter
        for h in self._hooks:
            h.after_train()

    def before_step(self) -> None:
        # Keep the storage on the iteration hooks and the model put their scalars at.
        self.storage.iter = self.iter
        for h in self._hooks:
            h.before_step()

    def after_backward(self) -> None:
        for h in self._hooks:
            h.after_backward()

    def after_step(self) -> None:
        for h in self._hooks:
            h.after_step()

    def run_step(self) -> None:
        raise NotImplementedError  # abstract: SimpleTrainer implements it

    def state_dict(self) -> dict:
        """Returns ``{"iteration": iter, "rng": RNG states, "hooks": {hook qualname: state}}``
        (stateful hooks only)."""
        ret: dict[str, Any] = {"iteration": self.iter, "rng": get_rng_state()}
        hooks_state = {}
        for h in self._hooks:
            sd = h.state_dict()
            if sd:
                name = type(h).__qualname__
                if name in hooks_state:
                    # Two stateful hooks of one class cannot be told apart on load.
                    logger.warning("Skipping the state of a second hook of class %s.", name)
                    continue
                hooks_state[name] = sd
        if hooks_state:
            ret["hooks"] = hooks_state
        return ret

    def load_state_dict(self, state_dict: dict) -> None:
        """Restores ``iter`` and the state of each hook found in ``state_dict["hooks"]``; the
        RNG states are restored when ``train`` starts, by the main process only."""
        self.iter = state_dict["iteration"]
        # They are the main process's: on another rank they would make its draws rank 0's.
        main = comm.is_main_process()
        self._rng_state_to_restore = state_dict.get("rng", NO_RNG_STATE) if main else None
        for key, value in state_dict.get("hooks", {}).items():
            for h in self._hooks:
                if type(h).__qualname__ == key:
                    h.load_state_dict(value)
                    break
            else:
                logger.warning("Cannot find the hook '%s', its state_dict is ignored.", key)


def _diverged(error: FloatingPointError, it: int, storage: EventStorage) -> FloatingPointError:
    """``error`` with the iteration and the last logged losses (the failing step may have
    none: a non-finite box is found inside the model, before any loss is logged)."""
    latest = storage.latest()
    if "total_loss" in latest:
        # The losses of total_loss's iteration: not a validation loss put at another one.
        at = latest["total_loss"][1]
        losses = sorted((k, v) for k, (v, i) in latest.items() if "loss" in k and i == at)
        values = ", ".join(f"{k}={v:.6g}" for k, v in losses)
        last = f"last logged losses (iteration {at}): {values}"
    else:
        last = "no loss was logged before"
    return FloatingPointError(f"Training diverged at iteration {it}: {error}\n{last}")


def sum_losses(loss_dict: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Returns (total loss, dict of losses) from a model's training output (a dict of loss
    tensors, or one tensor)."""
    if isinstance(loss_dict, torch.Tensor):
        return loss_dict, {"total_loss": loss_dict}
    if not isinstance(loss_dict, Mapping):
        raise TypeError(
            f"The model must return a dict of loss tensors in training, got {type(loss_dict)}."
        )
    for k, v in loss_dict.items():
        if not isinstance(v, torch.Tensor):
            raise TypeError(
                f"Loss '{k}' returned by the model is a {type(v).__name__}, not a Tensor."
            )
    return sum(loss_dict.values()), dict(loss_dict)


class SimpleTrainer(TrainerBase):
    """One optimizer step per iteration on a batch from ``data_loader``: sum the model's
    losses, backward, step. Anything else (LR schedule, checkpoints, logs) is a hook.

    With ``amp`` the forward runs under autocast. On CUDA it runs in ``precision`` and the
    loss is scaled by a ``GradScaler``. On the CPU it runs in bfloat16 (no scaler needed) where
    the processor computes bfloat16 natively, and in float32 otherwise, since emulated bfloat16
    is slower than float32. The device is the one of the model's parameters.

    Args:
        model (nn.Module): returns a dict of scalar losses in training mode.
        data_loader (Iterable): yields the model's inputs; iterated without end.
        optimizer (torch.optim.Optimizer): steps the model's parameters.
        gather_metric_period (int): write metrics every this many iterations. Defaults to 1.
        zero_grad_before_forward (bool): zero gradients before the forward instead of before
            the backward. Defaults to False.
        async_write_metrics (bool): write metrics in a background thread. Defaults to False.
        amp (bool): automatic mixed precision. Defaults to False.
        grad_scaler (torch.amp.GradScaler | None): with ``amp``, on CUDA only. Defaults to a
            new one.
        precision (torch.dtype): with ``amp``, the autocast dtype on CUDA. Defaults to
            torch.float16.
        log_grad_scaler (bool): put the scaler's scale in the storage. Defaults to False.
    """

    def __init__(
        self,
        model: nn.Module,
        data_loader: Iterable,
        optimizer: torch.optim.Optimizer,
        gather_metric_period: int = 1,
        zero_grad_before_forward: bool = False,
        async_write_metrics: bool = False,
        *,
        amp: bool = False,
        grad_scaler: "torch.amp.GradScaler | None" = None,
        precision: torch.dtype = torch.float16,
        log_grad_scaler: bool = False,
    ) -> None:
        super().__init__()
        # Training mode is set here rather than in run_step: a hook (e.g. an evaluation) may
        # switch the model to eval mode and is responsible for switching it back.
        model.train()
        self.model = model
        self.data_loader = data_loader
        self._data_loader_iter_obj = None
        self.optimizer = optimizer
        self.gather_metric_period = gather_metric_period
        self.zero_grad_before_forward = zero_grad_before_forward
        self.async_write_metrics = async_write_metrics
        # One worker, so metrics are written in the order of the iterations. Its thread starts
        # on the first task only, and it is public: hooks may hand it other non-critical work.
        self.concurrent_executor = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        self._metrics_storage: EventStorage | None = None
        self._metrics_writes: list[concurrent.futures.Future] = []
        self.device_type, self.precision, self.grad_scaler = None, None, None
        if amp:
            self._set_up_amp(precision, grad_scaler)
        self.log_grad_scaler = log_grad_scaler

    def _set_up_amp(self, precision: torch.dtype, grad_scaler) -> None:
        self.device_type = next(self.model.parameters()).device.type
        if self.device_type == "cuda":
            self.precision = precision
            self.grad_scaler = grad_scaler or torch.amp.GradScaler("cuda")
        elif _cpu_supports_bf16():
            self.precision = torch.bfloat16
        else:
            logger.warning(
                "AMP: this CPU has no native bfloat16 support; training in float32 instead."
            )

    @property
    def _data_loader_iter(self):
        # Created lazily, so building a trainer does not start data loading workers.
        if self._data_loader_iter_obj is None:
            self._data_loader_iter_obj = iter(self.data_loader)
        return self._data_loader_iter_obj

    def reset_data_loader(self, data_loader_builder) -> None:
        """Replaces the data loader with ``data_loader_builder()`` (e.g. after a resume)."""
        del self.data_loader
        self._data_loader_iter_obj = None
        self.data_loader = data_loader_builder()

    def run_step(self) -> None:
        assert self.model.training, f"[{type(self).__name__}] model was changed to eval mode!"
        start = time.perf_counter()
        data = next(self._data_loader_iter)
        data_time = time.perf_counter() - start
        if self.zero_grad_before_forward:
            self.optimizer.zero_grad()
        if self.precision is None:
            autocast = contextlib.nullcontext()
        else:
            autocast = torch.autocast(self.device_type, dtype=self.precision)
        with autocast:
            losses, loss_dict = sum_losses(self.model(data))
        if not self.zero_grad_before_forward:
            self.optimizer.zero_grad()
        scaler = self.grad_scaler
        (losses if scaler is None else scaler.scale(losses)).backward()
        self.after_backward()
        if scaler is not None and self.log_grad_scaler:
            get_event_storage().put_scalar("[metric]grad_scaler", scaler.get_scale())
        self._submit_metrics(loss_dict, data_time)
        if scaler is None:
            self.optimizer.step()
        else:
            scaler.step(self.optimizer)
            scaler.update()

    def _submit_metrics(self, loss_dict: dict[str, torch.Tensor], data_time: float) -> None:
        # Looked up here, on the training thread: by the time a background write runs, a hook
        # may have entered a throwaway storage (PreciseBN, ValidationLoss) on this thread.
        self._metrics_storage = get_event_storage()
        if self.async_write_metrics:
            self._raise_failed_metrics_writes()
            self._metrics_writes.append(
                self.concurrent_executor.submit(
                    self._write_metrics, loss_dict, data_time, iter=self.iter
                )
            )
        else:
            self._write_metrics(loss_dict, data_time)

    def _raise_failed_metrics_writes(self) -> None:
        """Raises, in the training thread, the FloatingPointError of a finished background
        write (a NaN loss); Detectron2 only logs it and trains on."""
        pending = []
        for future in self._metrics_writes:
            if not future.done():
                pending.append(future)
            elif isinstance(future.exception(), FloatingPointError):
                raise future.exception()
        self._metrics_writes = pending

    def _write_metrics(
        self,
        loss_dict: Mapping[str, torch.Tensor],
        data_time: float,
        prefix: str = "",
        iter: int | None = None,
    ) -> None:
        """Calls :meth:`write_metrics` every ``gather_metric_period`` iterations; ``iter``
        defaults to ``self.iter``. Overridable with Detectron2's signature."""
        cur_iter = self.iter if iter is None else iter
        if (cur_iter + 1) % self.gather_metric_period != 0:
            return
        try:
            SimpleTrainer.write_metrics(
                loss_dict, data_time, cur_iter, prefix, storage=self._metrics_storage
            )
        except Exception:
            # In a background thread the exception would otherwise go unseen.
            logger.exception("Exception in writing metrics: ")
            raise

    @staticmethod
    def write_metrics(
        loss_dict: Mapping[str, torch.Tensor],
        data_time: float,
        cur_iter: int,
        prefix: str = "",
        storage: EventStorage | None = None,
    ) -> None:
        """Puts ``total_loss``, each loss (averaged over ranks) and ``data_time`` (the slowest
        rank's) in ``storage`` (defaults to the current one). Unlike Detectron2, ``prefix``
        applies to every loss, not only to ``total_loss``: a prefixed write (e.g. of validation
        losses) cannot overwrite the training losses.

        Raises:
            FloatingPointError: if the total loss is NaN or infinite, naming the iteration and
                every loss value.
        """
        metrics = {k: float(v.detach().cpu().item()) for k, v in loss_dict.items()}
        # Checked on every rank, so a diverged rank fails at once instead of hanging the others.
        if not np.isfinite(sum(metrics.values())):
            raise FloatingPointError(
                f"Loss became infinite or NaN at iteration={cur_iter}!\nloss_dict = {metrics}"
            )
        storage = get_event_storage() if storage is None else storage
        storage.put_scalar("rank_data_time", data_time, cur_iter=cur_iter)
        all_metrics = comm.gather({**metrics, "data_time": data_time})
        if not comm.is_main_process():
            return
        data_time = float(np.max([m.pop("data_time") for m in all_metrics]))
        storage.put_scalar("data_time", data_time, cur_iter=cur_iter)
        metrics = {k: float(np.mean([m[k] for m in all_metrics])) for k in all_metrics[0]}
        storage.put_scalar(f"{prefix}total_loss", sum(metrics.values()), cur_iter=cur_iter)
        if len(metrics) > 1:
            storage.put_scalars(cur_iter=cur_iter, **{prefix + k: v for k, v in metrics.items()})

    def state_dict(self) -> dict:
        """Adds ``"optimizer"``, ``"grad_scaler"`` with a scaler and, when the loader can save
        its position, ``"data_loader"``."""
        ret = super().state_dict()
        ret["optimizer"] = self.optimizer.state_dict()
        if self.grad_scaler is not None:
            ret["grad_scaler"] = self.grad_scaler.state_dict()
        loader_state = get_data_loader_state(self.data_loader)
        if loader_state is not None:
            ret["data_loader"] = loader_state
        return ret

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self.optimizer.load_state_dict(state_dict["optimizer"])
        if self.grad_scaler is not None and "grad_scaler" in state_dict:
            self.grad_scaler.load_state_dict(state_dict["grad_scaler"])
        if load_data_loader_state(self.data_loader, state_dict.get("data_loader")):
            self._data_loader_iter_obj = None  # the next batch comes from the loaded position

    def after_train(self) -> None:
        # Before the hooks, unlike Detectron2: the writers' last write must see the metrics of
        # the last iterations. A new pool lets this trainer train again (Detectron2's cannot).
        self.concurrent_executor.shutdown(wait=True)
        self.concurrent_executor = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        error = None
        try:
            self._raise_failed_metrics_writes()
        except FloatingPointError as e:
            # A NaN the writing thread found at the last steps: the hooks must see a failure.
            self.outcome, error = FAILED, e
        super().after_train()
        if error is not None:
            raise _diverged(error, self.iter, self.storage) from error


def _cpu_supports_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX); else it is emulated."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


class AMPTrainer(SimpleTrainer):
    """``SimpleTrainer`` with ``amp=True``, under Detectron2's name and signature."""

    def __init__(
        self,
        model: nn.Module,
        data_loader: Iterable,
        optimizer: torch.optim.Optimizer,
        gather_metric_period: int = 1,
        zero_grad_before_forward: bool = False,
        grad_scaler: "torch.amp.GradScaler | None" = None,
        precision: torch.dtype = torch.float16,
        log_grad_scaler: bool = False,
        async_write_metrics: bool = False,
    ) -> None:
        super().__init__(
            model,
            data_loader,
            optimizer,
            gather_metric_period,
            zero_grad_before_forward,
            async_write_metrics,
            amp=True,
            grad_scaler=grad_scaler,
            precision=precision,
            log_grad_scaler=log_grad_scaler,
        )
