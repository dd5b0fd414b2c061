"""A restricted unpickler for ``.pkl`` weight files (Detectron2 and Caffe2 model zoos).

Unpickling can run arbitrary code: a pickle names any importable callable (``os.system``) and
the unpickler calls it. Weight files only need numpy arrays inside dicts, so every global
outside that short list is refused before it is imported.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np

__all__ = ["RestrictedUnpickler", "safe_load_pickle"]


def _numpy_module(name: str) -> Any:
    """numpy >= 2 moved ``numpy.core.*`` to ``numpy._core.*``; old pickles use either name."""
    import importlib

    try:
        return importlib.import_module(f"numpy._core.{name}")
    except ImportError:
        return importlib.import_module(f"numpy.core.{name}")


def _allowed_globals() -> dict[tuple[str, str], Any]:
    import codecs
    import collections

    multiarray, numeric = _numpy_module("multiarray"), _numpy_module("numeric")
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("collections", "OrderedDict"): collections.OrderedDict,
        # Protocol-2 pickles written by Python 3 store bytes as _codecs.encode(str, "latin1").
        ("_codecs", "encode"): codecs.encode,
    }
    # Plain builtin types; protocol 2 writes e.g. empty bytes as a call to __builtin__.bytes.
    builtins = (bytes, bytearray, set, frozenset)
    allowed.update({(m, b.__name__): b for m in ("builtins", "__builtin__") for b in builtins})
    for prefix in ("numpy.core", "numpy._core"):
        allowed[(f"{prefix}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{prefix}.multiarray", "scalar")] = multiarray.scalar
        allowed[(f"{prefix}.numeric", "_frombuffer")] = numeric._frombuffer
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles only numpy arrays/scalars/dtypes, builtin containers and OrderedDict."""

    def __init__(
        self,
        file: io.BufferedIOBase,
        *,
        source: str = "<stream>",
        extra_globals: dict[tuple[str, str], Any] | None = None,
        **kwargs: Any,
    ):
        """
        Args:
            file (file): a binary file object.
            source (str): file name used in error messages. Defaults to "<stream>".
            extra_globals (dict | None): more allowed ``(module, name) -> object`` pairs, for
                files that also hold e.g. an enum. Defaults to None.
            **kwargs: passed to ``pickle.Unpickler`` (e.g. ``encoding="latin1"``).
        """
        super().__init__(file, **kwargs)
        self._source = source
        self._allowed = {**_allowed_globals(), **(extra_globals or {})}

    def find_class(self, module: str, name: str) -> Any:
        obj = self._allowed.get((module, name))
        if obj is None:
            raise pickle.UnpicklingError(
                f"Refusing to load {self._source}: it references the global '{module}.{name}', "
                "which is not a numpy array or container. Weight and proposal files should only "
                "hold arrays; if you trust this file, convert it to tensors with torch.save."
            )
        return obj


def safe_load_pickle(
    filename: str,
    file: io.BufferedIOBase | None = None,
    extra_globals: dict[tuple[str, str], Any] | None = None,
) -> Any:
    """Loads a pickled weight file with :class:`RestrictedUnpickler`.

    Uses ``encoding="latin1"`` so that Python-2 pickles (Caffe2 model zoo) decode their numpy
    buffers byte for byte.

    Args:
        filename (str): the file to read, also named in errors.
        file (file | None): an already-open binary file for ``filename``. Defaults to None.
        extra_globals (dict | None): see :class:`RestrictedUnpickler`. Defaults to None.

    Returns:
        Any: the unpickled object.

    Raises:
        pickle.UnpicklingError: the file references a global outside the allowed list.
        RuntimeError: the file is truncated or corrupt.
    """
    if file is None:
        with open(filename, "rb") as f:
            return safe_load_pickle(filename, f, extra_globals)
    try:
        unpickler = RestrictedUnpickler(
            file, source=filename, extra_globals=extra_globals, encoding="latin1"
        )
        return unpickler.load()
    except pickle.UnpicklingError as e:
        if str(e).startswith("Refusing to load"):
            raise
        raise _corrupt(filename, e) from e
    except (EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError) as e:
        raise _corrupt(filename, e) from e


def _corrupt(filename: str, cause: BaseException) -> RuntimeError:
    return RuntimeError(
        f"Cannot read {filename}: the file is truncated or corrupt "
        f"({type(cause).__name__}: {cause}). Re-download or re-save it."
    )
