"""``@configurable``: one constructor that takes either a config or explicit arguments.

A class whose ``__init__`` is decorated can be built two ways: ``Cls(a=1, b=2)`` is a plain
call, and ``Cls(cfg, ...)`` (or ``Cls(cfg=cfg, ...)``) first asks ``Cls.from_config(cfg, ...)``
for the arguments. Keyword arguments that ``from_config`` does not take are passed straight to
``__init__`` and win over what ``from_config`` returned. The same works for a function with
``@configurable(from_config=fn)``. The rules, and the errors for wrong use, are Detectron2's.
"""
from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

from fvcore.common.config import CfgNode as _CfgNodeBase

__all__ = ["configurable"]

_WRONG_USE = "Incorrect use of @configurable: decorate __init__, or pass from_config= for a function."


def _config_types() -> tuple[type, ...]:
    try:  # an omegaconf DictConfig is a config too (Detectron2 accepts one); omegaconf is optional
        from omegaconf import DictConfig
    except ImportError:
        return (_CfgNodeBase,)
    return (_CfgNodeBase, DictConfig)


def _called_with_cfg(*args: Any, **kwargs: Any) -> bool:
    """Whether the call gives a config, as the first positional argument or as ``cfg=``."""
    types = _config_types()
    if args and isinstance(args[0], types):
        return True
    return isinstance(kwargs.get("cfg"), types)


def _args_from_config(from_config: Callable, *args: Any, **kwargs: Any) -> dict:
    """Calls ``from_config`` with the arguments it accepts; returns the ``__init__`` kwargs.

    Keywords that ``from_config`` does not name (when it has no ``**kwargs``) skip it and
    override its result.
    """
    params = inspect.signature(from_config).parameters
    if next(iter(params), None) != "cfg":
        owner = getattr(from_config, "__self__", None)
        name = f"{owner}.from_config" if owner is not None else from_config.__name__
        raise TypeError(f"{name} must take 'cfg' as its first argument.")
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params.values()):
        return from_config(*args, **kwargs)
    passthrough = {k: kwargs.pop(k) for k in list(kwargs) if k not in params}
    ret = from_config(*args, **kwargs)
    ret.update(passthrough)
    return ret


def _wrap_init(init_func: Callable) -> Callable:
    @functools.wraps(init_func)
    def wrapped(self, *args, **kwargs):
        try:
            from_config = type(self).from_config
        except AttributeError as e:
            raise AttributeError(
                f"{type(self).__name__} uses @configurable but has no 'from_config' classmethod."
            ) from e
        if not inspect.ismethod(from_config):
            raise TypeError(
                f"{type(self).__name__}.from_config must be a classmethod for @configurable."
            )
        if _called_with_cfg(*args, **kwargs):
            init_func(self, **_args_from_config(from_config, *args, **kwargs))
        else:
            init_func(self, *args, **kwargs)

    return wrapped


def configurable(init_func: Callable | None = None, *, from_config: Callable | None = None):
    """Lets a class's ``__init__`` (or a function) be called with a config.

    Examples:
    ::
        class Head(nn.Module):
            @configurable
            def __init__(self, *, in_channels: int, num_classes: int = 80): ...

            @classmethod
            def from_config(cls, cfg, input_shape):
                return {"in_channels": input_shape.channels,
                        "num_classes": cfg.MODEL.ROI_HEADS.NUM_CLASSES}

        Head(in_channels=256)                # plain call
        Head(cfg, shape)                     # arguments from the config
        Head(cfg, shape, num_classes=3)      # from the config, one overridden

        @configurable(from_config=lambda cfg: {"batch": cfg.SOLVER.IMS_PER_BATCH})
        def make_loader(batch, workers=0): ...

    Args:
        init_func (Callable | None): the ``__init__`` being decorated. The class needs a
            ``from_config`` classmethod whose first argument is ``cfg``.
        from_config (Callable | None): for a function, the function that maps a config (its
            first argument, ``cfg``) to the function's arguments.
    """
    if init_func is not None:
        if not (
            inspect.isfunction(init_func) and from_config is None and init_func.__name__ == "__init__"
        ):
            raise AssertionError(_WRONG_USE)
        return _wrap_init(init_func)
    if from_config is None:
        return configurable  # ``@configurable()`` means ``@configurable``
    if not inspect.isfunction(from_config):
        raise AssertionError("from_config of @configurable must be a function.")

    def decorator(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapped(*args, **kwargs):
            if _called_with_cfg(*args, **kwargs):
                return func(**_args_from_config(from_config, *args, **kwargs))
            return func(*args, **kwargs)

        wrapped.from_config = from_config
        return wrapped

    return decorator
