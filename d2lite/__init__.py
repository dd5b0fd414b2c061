"""d2lite: a small, Detectron2-compatible Faster R-CNN training library.

Importing it registers every built-in part (backbones, heads, meta-architectures, the COCO 2017
datasets).
Before torch is imported, it makes OpenMP threads wait passively unless ``OMP_WAIT_POLICY`` is
set, and afterwards it sizes torch's threads to the CPUs the process may use (see
``d2lite.utils.cpu``).
"""
from .utils import cpu as _cpu

_cpu.prefer_passive_openmp()  # before anything imports torch: the runtime reads it at start

from . import (  # noqa: E402
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

_cpu.limit_threads_to_usable_cpus()

__version__ = "0.2.0"

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
