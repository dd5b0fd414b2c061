"""Names that Detectron2 has and d2lite leaves out: they import, and refuse to be used.

A Detectron2 script often imports more than it runs (``from detectron2.structures import
BitMasks, Boxes``). Such imports work in d2lite; calling or instantiating a left-out name raises
``NotImplementedError`` saying what d2lite covers.
"""
from __future__ import annotations

from typing import Any, Callable

__all__ = ["SCOPE", "unsupported_class", "unsupported_function"]

SCOPE = (
    "d2lite covers Faster R-CNN box detection: ResNet/FPN backbones, RPN, box ROI heads, "
    "COCO box evaluation (see the README's 'Detectron2 and d2lite' table)"
)


def _message(name: str, what: str) -> str:
    return f"{name} ({what}) is not implemented in d2lite; {SCOPE}."


def unsupported_class(name: str, what: str, module: str, bases: tuple[type, ...] = (object,)) -> type:
    """A class that can be imported, subclassed and used in ``isinstance``, but not built.

    Args:
        name (str): the Detectron2 class name, e.g. "RotatedBoxes".
        what (str): the feature it belongs to, e.g. "rotated boxes".
        module (str): the ``__module__`` to give the class (where it is imported from).
        bases (tuple[type, ...]): base classes, so ``issubclass`` checks keep Detectron2's answer.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(_message(name, what))

    doc = f"Not in d2lite ({what}): importable for Detectron2 scripts; instantiating it raises."
    cls = type(name, bases, {"__init__": __init__, "__doc__": doc, "__module__": module})
    # An abstract base (Backbone, DatasetEvaluator) would refuse first with its own TypeError.
    cls.__abstractmethods__ = frozenset()
    return cls


def unsupported_function(name: str, what: str, module: str) -> Callable[..., Any]:
    """A function that can be imported but raises ``NotImplementedError`` when called."""

    def func(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(_message(name, what))

    func.__name__ = func.__qualname__ = name
    func.__module__ = module
    func.__doc__ = f"Not in d2lite ({what}): importable for Detectron2 scripts; calling it raises."
    return func
