"""``Registry`` (fvcore's) and ``locate``: from a name in a config to the object it names.

``locate("torch.optim.SGD")`` imports the longest importable module prefix of the name and
walks the rest as attributes; ``_convert_target_to_string`` is its inverse and writes the
shortest dotted path that still resolves to the same object.
"""
from __future__ import annotations

import builtins
import importlib
from typing import Any

from fvcore.common.registry import Registry

__all__ = ["Registry", "locate"]


def _convert_target_to_string(obj: Any) -> str:
    """The dotted name of ``obj`` that :func:`locate` turns back into ``obj``.

    Implementation modules are skipped where a parent package re-exports the object, so
    ``RandomCrop`` is written "d2lite.data.transforms.RandomCrop" rather than with the name of
    the file it is defined in; such names survive moving code between files.

    Args:
        obj (Any): a class, function or other object with ``__module__`` and ``__qualname__``.
    """
    module, qualname = obj.__module__, obj.__qualname__
    parts = module.split(".")
    # Shortest package first; the full module path is the fallback that always resolves.
    for k in range(1, len(parts)):
        candidate = f"{'.'.join(parts[:k])}.{qualname}"
        try:
            if locate(candidate) is obj:
                return candidate
        except ImportError:
            continue
    return f"{module}.{qualname}"


def locate(name: str) -> Any:
    """Returns the object named by a dotted path such as "package.module.Class.attr".

    Unlike ``pydoc.locate``, this finds objects that a package re-exports under a name its
    submodule also uses (``torch.optim.SGD`` next to the module ``torch.optim.sgd``). A name
    without a dot is looked up among the builtins.

    Args:
        name (str): ``{obj.__module__}.{obj.__qualname__}`` or a shorter path to the same object.

    Raises:
        ImportError: if no prefix of ``name`` imports, or the rest is not an attribute chain.
    """
    parts = name.split(".")
    if len(parts) == 1 and hasattr(builtins, name):
        return getattr(builtins, name)
    for split in range(len(parts), 0, -1):
        module_name = ".".join(parts[:split])
        try:
            obj = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            # Only "this prefix is not a module" means try a shorter one; a module that fails
            # on one of its own imports is a real error to show.
            if e.name is None or not (module_name + ".").startswith(e.name + "."):
                raise
            continue
        try:
            for attr in parts[split:]:
                obj = getattr(obj, attr)
        except AttributeError as e:
            raise ImportError(f"Cannot locate {name!r}: {e}") from e
        return obj
    raise ImportError(f"Cannot locate {name!r}: no prefix of it is an importable module")
