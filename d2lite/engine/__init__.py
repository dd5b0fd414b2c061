"""Training: the loop and its hooks, ``DefaultTrainer``, ``DefaultPredictor`` and ``launch``."""

from .defaults import (
    DefaultPredictor,
    DefaultTrainer,
    create_ddp_model,
    default_argument_parser,
    default_setup,
    default_writers,
)
from .hooks import *  # noqa: F401,F403  (Detectron2 exposes every hook from d2lite.engine)
from .launch import launch
from .train_loop import AMPTrainer, HookBase, SimpleTrainer, TrainerBase

from .hooks import __all__ as _hook_names

__all__ = [
    "AMPTrainer",
    "DefaultPredictor",
    "DefaultTrainer",
    "HookBase",
    "SimpleTrainer",
    "TrainerBase",
    "create_ddp_model",
    "default_argument_parser",
    "default_setup",
    "default_writers",
    "launch",
    *_hook_names,
]
