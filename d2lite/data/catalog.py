"""Global catalogs mapping a dataset name to its loader function and to its metadata.

They are global because user scripts register datasets once at the top and then only name them in
the config (``DATASETS.TRAIN = ("my_train",)``).
"""

from __future__ import annotations

import logging
from collections import UserDict
from types import SimpleNamespace
from typing import Any, Callable

from ..utils.logger import log_first_n

__all__ = ["DatasetCatalog", "MetadataCatalog", "Metadata"]

class _Catalog(UserDict):
    """A name -> entry dict with Detectron2's ``list`` / ``remove`` and a one-line ``str``."""

    _NAME, _WHAT = "Catalog", "entries"  # for str(): "DatasetCatalog(registered datasets: ...)"

    def list(self) -> list[str]:
        """Return the registered names."""
        return list(self.keys())

    def remove(self, name: str) -> None:
        """Unregister ``name``."""
        self.pop(name)

    def __str__(self) -> str:
        return f"{self._NAME}(registered {self._WHAT}: {', '.join(self.keys())})"

    __repr__ = __str__


class _DatasetCatalog(_Catalog):
    """Maps a dataset name to a function returning its ``list[dict]``.

    The function is only called by ``get``, so registering a dataset reads nothing.
    """

    _NAME, _WHAT = "DatasetCatalog", "datasets"

    def register(self, name: str, func: Callable[[], list[dict]]) -> None:
        """Register ``func`` under ``name``.

        Raises:
            AssertionError: if ``func`` is not callable or ``name`` is already registered (user
                scripts catch this type to tolerate re-running a registration cell).
        """
        assert callable(func), "You must register a function with `DatasetCatalog.register`!"
        assert name not in self, f"Dataset '{name}' is already registered!"
        self[name] = func

    def get(self, name: str) -> list[dict]:
        """Call the function registered as ``name`` and return its dataset dicts.

        Raises:
            KeyError: if ``name`` is not registered; the message lists the registered names.
        """
        try:
            func = self[name]
        except KeyError as e:
            raise KeyError(
                f"Dataset '{name}' is not registered! Available datasets are: "
                f"{', '.join(self.keys())}"
            ) from e
        return func()


DatasetCatalog = _DatasetCatalog()


class Metadata(SimpleNamespace):
    """Free-form attributes of a dataset (``thing_classes``, ``evaluator_type``...).

    An attribute, once set, cannot be changed to a different value: two parts of a script
    disagreeing about the class names is a bug that should fail loudly, not train silently.
    """

    name: str = "N/A"

    # Old names Detectron2 still answers to, with a warning.
    _RENAMED = {
        "class_names": "thing_classes",
        "dataset_id_to_contiguous_id": "thing_dataset_id_to_contiguous_id",
        "stuff_class_names": "stuff_classes",
    }

    def __getattr__(self, key: str) -> Any:
        # Only reached when the attribute is missing.
        if key.startswith("__"):
            raise AttributeError(key)
        if key in self._RENAMED:
            log_first_n(logging.WARNING, f"Metadata '{key}' was renamed to '{self._RENAMED[key]}'!")
            return getattr(self, self._RENAMED[key])
        raise AttributeError(
            f"Attribute '{key}' does not exist in the metadata of dataset '{self.name}'. "
            f"Available keys are {list(self.__dict__.keys())}."
        )

    def __setattr__(self, key: str, val: Any) -> None:
        if key in self._RENAMED:
            log_first_n(logging.WARNING, f"Metadata '{key}' was renamed to '{self._RENAMED[key]}'!")
            key = self._RENAMED[key]
        if key in self.__dict__:
            oldval = self.__dict__[key]
            assert _same_value(oldval, val), (
                f"Attribute '{key}' in the metadata of '{self.name}' cannot be set to a different "
                f"value!\n{oldval} != {val}"
            )
            return  # keep the first value, so its type (list or tuple) never flips
        super().__setattr__(key, val)

    def as_dict(self) -> dict[str, Any]:
        """Return a shallow copy of the attributes as a dict."""
        return dict(self.__dict__)

    def set(self, **kwargs: Any) -> Metadata:
        """Set several attributes at once; returns ``self`` for chaining."""
        for k, v in kwargs.items():
            setattr(self, k, v)
        return self

    def get(self, key: str, default: Any = None) -> Any:
        """Return attribute ``key``, or ``default`` when it is missing."""
        return self.__dict__.get(self._RENAMED.get(key, key), default)


def _same_value(a: Any, b: Any) -> bool:
    # Lists and tuples of class names count as equal: YAML gives lists, scripts often tuples.
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b))
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return a is b


class _MetadataCatalog(_Catalog):
    """Maps a dataset name to its ``Metadata``, created empty on first access."""

    _NAME, _WHAT = "MetadataCatalog", "metadata"

    def get(self, name: str) -> Metadata:
        """Return the metadata of ``name``, creating an empty one if needed."""
        assert len(name), "MetadataCatalog.get needs a non-empty dataset name"
        r = super().get(name, None)
        if r is None:
            r = self[name] = Metadata(name=name)
        return r



MetadataCatalog = _MetadataCatalog()
