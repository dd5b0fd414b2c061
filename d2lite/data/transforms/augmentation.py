"""``Augmentation``: the random part of data augmentation.

An augmentation looks at its inputs, draws its random parameters and returns a deterministic
``Transform``. The same transform is then applied to the image and to the boxes, which is what
keeps the two consistent (``RandomFlip.get_transform`` returns ``HFlipTransform(w)``).
"""

from __future__ import annotations

import inspect
from typing import Any, Sequence

import numpy as np

from .transform import Transform, TransformList

__all__ = [
    "Augmentation",
    "AugmentationList",
    "AugInput",
    "StandardAugInput",
    "TransformGen",
    "apply_augmentations",
    "apply_transform_gens",
]


def _check_img_dtype(img: Any) -> None:
    if not isinstance(img, np.ndarray):
        raise TypeError(f"[Augmentation] needs a numpy array image, got {type(img)}")
    if np.issubdtype(img.dtype, np.integer) and img.dtype != np.uint8:
        raise TypeError(f"[Augmentation] integer images must be uint8, got {img.dtype}")
    if img.ndim not in (2, 3):
        raise ValueError(f"[Augmentation] images must be HW or HWC, got shape {img.shape}")


class Augmentation:
    """Base class: draws random parameters and returns a ``Transform``.

    Subclasses implement ``get_transform`` taking the inputs named in ``input_args`` (by default
    just the image) and returning a ``Transform``.
    """

    input_args: tuple[str, ...] = ("image",)

    def _init(self, params: dict | None = None) -> None:
        """Store every constructor argument as an attribute (call with ``locals()``)."""
        if params:
            for k, v in params.items():
                if k != "self" and not k.startswith("_"):
                    setattr(self, k, v)

    def get_transform(self, *args: Any) -> Transform:
        """Return the deterministic transform for these inputs.

        Args:
            *args: the attributes of the ``AugInput`` named in ``input_args``.
        """
        raise NotImplementedError  # abstract: every Augmentation implements it

    def __call__(self, aug_input: AugInput) -> Transform:
        """Draw a transform for ``aug_input``, apply it in place and return it."""
        try:
            args = [getattr(aug_input, name) for name in self.input_args]
        except AttributeError as e:
            raise AttributeError(
                f"{type(self).__name__} needs inputs {self.input_args}, but {type(aug_input)} "
                f"lacks one: {e}"
            ) from e
        tfm = self.get_transform(*args)
        assert isinstance(
            tfm, (Transform, TransformList)
        ), f"{type(self).__name__}.get_transform must return a Transform, got {type(tfm)}"
        aug_input.transform(tfm)
        return tfm

    def _rand_range(self, low: float = 1.0, high: float | None = None, size: Any = None) -> Any:
        """Uniform random number(s) in ``[low, high)``, or ``[0, low)`` if ``high`` is None."""
        if high is None:
            low, high = 0, low
        if size is None:
            size = []
        return np.random.uniform(low, high, size)

    def __repr__(self) -> str:
        params = inspect.signature(self.__init__).parameters
        args = []
        for name, p in params.items():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or not hasattr(self, name):
                continue
            args.append(f"{name}={getattr(self, name)!r}")
        return f"{type(self).__name__}({', '.join(args)})"

    __str__ = __repr__


TransformGen = Augmentation
"""Old name of ``Augmentation``, kept for scripts written against Detectron2 < 0.3."""


class _TransformToAug(Augmentation):
    """Wrap a fixed ``Transform`` so it can sit in a list of augmentations."""

    def __init__(self, tfm: Transform) -> None:
        self.tfm = tfm

    def get_transform(self, *args: Any) -> Transform:
        return self.tfm

    def __call__(self, aug_input: AugInput) -> Transform:
        aug_input.transform(self.tfm)
        return self.tfm

    def __repr__(self) -> str:
        return repr(self.tfm)


def _transform_to_aug(tfm_or_aug: Transform | Augmentation) -> Augmentation:
    if isinstance(tfm_or_aug, Augmentation):
        return tfm_or_aug
    if not isinstance(tfm_or_aug, Transform):
        raise TypeError(f"Expected an Augmentation or a Transform, got {type(tfm_or_aug)}")
    return _TransformToAug(tfm_or_aug)


class AugmentationList(Augmentation):
    """Apply a sequence of augmentations (or fixed transforms) one after the other."""

    def __init__(self, augs: Sequence[Augmentation | Transform]) -> None:
        """
        Args:
            augs (Sequence[Augmentation | Transform]): applied in order.
        """
        super().__init__()
        self.augs = [_transform_to_aug(x) for x in augs]

    def __call__(self, aug_input: AugInput) -> TransformList:
        """Apply every augmentation to ``aug_input`` in place; return all their transforms."""
        return TransformList([aug(aug_input) for aug in self.augs])

    def __repr__(self) -> str:
        return f"AugmentationList[{', '.join(str(a) for a in self.augs)}]"

    __str__ = __repr__


class AugInput:
    """The inputs an augmentation may look at and that a transform changes.

    Attributes:
        image (np.ndarray[H, W, C] | np.ndarray[H, W]): uint8 or float image.
        boxes (np.ndarray[N, 4] | None): boxes in XYXY_ABS.
        sem_seg (np.ndarray[H, W] | None): a label map.
    """

    def __init__(
        self,
        image: np.ndarray,
        *,
        boxes: np.ndarray | None = None,
        sem_seg: np.ndarray | None = None,
    ) -> None:
        _check_img_dtype(image)
        self.image = image
        self.boxes = boxes
        self.sem_seg = sem_seg

    def transform(self, tfm: Transform) -> None:
        """Apply ``tfm`` in place to every input that is present."""
        self.image = tfm.apply_image(self.image)
        if self.boxes is not None:
            self.boxes = tfm.apply_box(self.boxes)
        if self.sem_seg is not None:
            self.sem_seg = tfm.apply_segmentation(self.sem_seg)

    def apply_augmentations(
        self, augmentations: Sequence[Augmentation | Transform]
    ) -> TransformList:
        """Apply ``augmentations`` in place and return the resulting transforms."""
        return AugmentationList(augmentations)(self)


StandardAugInput = AugInput
"""Old name of ``AugInput``."""


def apply_augmentations(
    augmentations: Sequence[Augmentation | Transform], inputs: AugInput | np.ndarray
) -> tuple[AugInput | np.ndarray, TransformList]:
    """Apply augmentations to an ``AugInput`` or to an image.

    Args:
        augmentations (Sequence[Augmentation | Transform]): applied in order.
        inputs (AugInput | np.ndarray): an ``AugInput`` (changed in place) or an HWC image.

    Returns:
        tuple: (the augmented image if ``inputs`` was an image, else the ``AugInput``;
        the ``TransformList`` to apply to the annotations).
    """
    image_only = isinstance(inputs, np.ndarray)
    if image_only:
        inputs = AugInput(inputs)
    tfms = inputs.apply_augmentations(augmentations)
    return (inputs.image if image_only else inputs), tfms


apply_transform_gens = apply_augmentations
"""Old name of ``apply_augmentations``, used by many course scripts."""
