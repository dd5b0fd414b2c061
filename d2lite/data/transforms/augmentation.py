"""``Augmentation``: the random part of data augmentation.

An augmentation looks at its inputs, draws its random parameters and returns a deterministic
``Transform``. The same transform is then applied to the image and to the boxes, which is what
keeps the two consistent (``RandomFlip.get_transform`` returns ``HFlipTransform(w)``).

Which inputs an augmentation looks at is given by the parameter names of its ``get_transform``:
``get_transform(self, image, boxes)`` receives ``aug_input.image`` and ``aug_input.boxes``.
"""

from __future__ import annotations

import inspect
import logging
import pprint
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

logger = logging.getLogger(__name__)


class AugmentationValueError(ValueError, AssertionError):
    """A bad argument value for an augmentation.

    Also an ``AssertionError`` because Detectron2 checks these with ``assert``, and code written
    for it (its own tests included) catches that.
    """


class AugmentationTypeError(TypeError, AssertionError):
    """A bad argument type for an augmentation (also an ``AssertionError``, as above)."""


_warned_dtypes: set[str] = set()


def _check_img_dtype(img: Any) -> None:
    if not isinstance(img, np.ndarray):
        raise AugmentationTypeError(f"[Augmentation] needs a numpy array image, got {type(img)}")
    if img.ndim not in (2, 3):
        raise AugmentationValueError(
            f"[Augmentation] images must be HW or HWC, got shape {img.shape}"
        )
    if np.issubdtype(img.dtype, np.integer) and img.dtype != np.uint8:
        # Detectron2 lets these through (its dtype check never fires); flips and crops work on
        # them, and d2lite's resize and rotation round back to the dtype, so warn, once a dtype.
        if img.dtype.name not in _warned_dtypes:
            _warned_dtypes.add(img.dtype.name)
            logger.warning(
                "[Augmentation] got a %s image; use uint8 or floating point (photometric "
                "augmentations return float for it)",
                img.dtype,
            )


def _input_names(aug: Augmentation) -> tuple[str, ...]:
    """The ``AugInput`` attributes ``aug.get_transform`` takes, read from its signature.

    One parameter means "image" whatever its name, so the common image-only augmentations work.
    """
    params = list(inspect.signature(aug.get_transform).parameters.values())
    if len(params) == 1:
        return ("image",)
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    if any(p.kind in variadic for p in params):
        raise TypeError(
            f"{type(aug).__name__}.get_transform takes *args or **kwargs, so the default "
            "__call__ cannot tell which inputs it needs: set `input_args` or override __call__"
        )
    return tuple(p.name for p in params)


class Augmentation:
    """Base class: draws random parameters and returns a ``Transform``.

    Subclasses implement ``get_transform``. Its parameter names say which attributes of the
    ``AugInput`` it receives (``image``, ``boxes``, ``sem_seg``, or any a custom input has).

    Attributes:
        input_args (tuple[str, ...] | None): those attribute names. None (the default) means
            "read them from ``get_transform``'s signature" on the first call.
    """

    input_args: tuple[str, ...] | None = None

    def _init(self, params: dict | None = None) -> None:
        """Store every constructor argument as an attribute (call with ``locals()``)."""
        for k, v in (params or {}).items():
            if k != "self" and not k.startswith("_"):
                setattr(self, k, v)

    def get_transform(self, *args: Any) -> Transform:
        """Return the deterministic transform for these inputs.

        Args:
            *args: the attributes of the ``AugInput`` named in ``input_args``.
        """
        raise NotImplementedError  # abstract: every Augmentation implements it

    def __call__(self, aug_input: AugInput) -> Transform:
        """Draw a transform for ``aug_input``, apply it in place and return it.

        Raises:
            AttributeError: ``aug_input`` lacks an input ``get_transform`` needs.
        """
        if self.input_args is None:
            self.input_args = _input_names(self)
        args = []
        for name in self.input_args:
            try:
                args.append(getattr(aug_input, name))
            except AttributeError as e:
                raise AttributeError(
                    f"{type(self).__name__}.get_transform needs the input {name!r}, but "
                    f"{type(aug_input).__name__} has no such attribute"
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
        return np.random.uniform(low, high, [] if size is None else size)

    def __repr__(self) -> str:
        """``Name(arg=value, ...)`` listing the constructor arguments that are not defaults.

        An argument counts as default when it *is* the default object, as in Detectron2: so
        ``RandomFlip()`` prints bare, while an explicit ``RandomFlip(prob=0.5)`` shows ``prob``.
        Falls back to ``object.__repr__`` if the arguments are not all stored as attributes,
        since a partial list would read as "everything else is default".
        """
        args = []
        for name, param in inspect.signature(self.__init__).parameters.items():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) or not hasattr(self, name):
                return object.__repr__(self)
            value = getattr(self, name)
            if value is param.default:
                continue
            text = pprint.pformat(value)
            if "\n" in text:  # too long for one line: say only that it was set
                text = "..."
            args.append(f"{name}={text}")
        return f"{type(self).__name__}({', '.join(args)})"

    # No __str__: object's calls __repr__, so a subclass overriding __repr__ changes both.


TransformGen = Augmentation
"""Old name of ``Augmentation``, kept for scripts written against Detectron2 < 0.3."""


class _TransformToAug(Augmentation):
    """Wrap a fixed ``Transform`` so it can sit in a list of augmentations."""

    def __init__(self, tfm: Transform) -> None:
        self.tfm = tfm

    def get_transform(self, *args: Any) -> Transform:
        return self.tfm

    def __call__(self, aug_input: AugInput) -> Transform:
        # A fixed transform needs no inputs, so any object with `transform` will do.
        aug_input.transform(self.tfm)
        return self.tfm

    def __repr__(self) -> str:
        return repr(self.tfm)


def _transform_to_aug(tfm_or_aug: Transform | Augmentation) -> Augmentation:
    if isinstance(tfm_or_aug, Augmentation):
        return tfm_or_aug
    if not isinstance(tfm_or_aug, Transform):
        raise AugmentationTypeError(
            f"Expected an Augmentation or a Transform, got {type(tfm_or_aug)}"
        )
    return _TransformToAug(tfm_or_aug)


class AugmentationList(Augmentation):
    """Apply a sequence of augmentations (or fixed transforms) one after the other.

    It has no ``get_transform``: each augmentation must see the output of the previous one.
    """

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


class AugInput:
    """The inputs an augmentation may look at and that a transform changes.

    A project with other data can use any object that has the attributes its augmentations
    name and a ``transform(tfm)`` method that changes them in place.

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
        """
        Args:
            image (np.ndarray): HW or HWC, uint8 in [0, 255] or float.
            boxes (np.ndarray | None): Nx4 in XYXY_ABS. Defaults to None.
            sem_seg (np.ndarray | None): HW integer labels. Defaults to None.
        """
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
