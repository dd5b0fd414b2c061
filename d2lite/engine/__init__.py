"""Training: the loop and its hooks, ``DefaultTrainer``, ``DefaultPredictor`` and ``launch``."""

from .defaults import (
    DefaultPredictor,
    DefaultTrainer,
    create_ddp_model,
    default_argument_parser,
    default_setup,
    default_writers,
)
from .hooks import (
    AutogradProfiler,
    BestCheckpointer,
    CallbackHook,
    EarlyStopping,
    EvalHook,
    IterationTimer,
    LRScheduler,
    PeriodicCheckpointer,
    PeriodicWriter,
    PreciseBN,
    TorchMemoryStats,
    TorchProfiler,
    ValidationLoss,
)
from .launch import DEFAULT_TIMEOUT, launch
from .train_loop import AMPTrainer, HookBase, SimpleTrainer, TrainerBase

__all__ = [
    "DEFAULT_TIMEOUT",
    "AMPTrainer",
    "AutogradProfiler",
    "BestCheckpointer",
    "CallbackHook",
    "DefaultPredictor",
    "DefaultTrainer",
    "EarlyStopping",
    "EvalHook",
    "HookBase",
    "IterationTimer",
    "LRScheduler",
    "PeriodicCheckpointer",
    "PeriodicWriter",
    "PreciseBN",
    "SimpleTrainer",
    "TorchMemoryStats",
    "TorchProfiler",
    "TrainerBase",
    "ValidationLoss",
    "create_ddp_model",
    "default_argument_parser",
    "default_setup",
    "default_writers",
    "launch",
]
