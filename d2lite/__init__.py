"""d2lite: a small, Detectron2-compatible Faster R-CNN training library.

Importing it registers every built-in part (backbones, heads, meta-architectures, datasets).
"""
from . import (
    checkpoint,
    config,
    data,
    engine,
    evaluation,
    layers,
    model_zoo,
    modeling,
    solver,
    structures,
    utils,
)

__version__ = "0.1.0"

__all__ = [
    "checkpoint",
    "config",
    "data",
    "engine",
    "evaluation",
    "layers",
    "model_zoo",
    "modeling",
    "solver",
    "structures",
    "utils",
]
