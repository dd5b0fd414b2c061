"""Augmentations (random) and transforms (deterministic): ``import d2lite.data.transforms as T``.

The same names as ``detectron2.data.transforms``: fvcore's transforms, Detectron2's own, the
augmentations and the ``AugInput`` machinery. Each module's ``__all__`` says what it exports.
"""

from . import augmentation, augmentation_impl, transform
from .augmentation import *  # noqa: F401,F403
from .augmentation_impl import *  # noqa: F401,F403
from .transform import *  # noqa: F401,F403

__all__ = augmentation.__all__ + augmentation_impl.__all__ + transform.__all__
