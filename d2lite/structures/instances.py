"""``Instances``: the per-image set of objects (ground truth, proposals or predictions)."""

from __future__ import annotations

import itertools
from typing import Any

import torch

__all__ = ["Instances"]


class _NotIterableError(TypeError, NotImplementedError):
    """Detectron2 raises NotImplementedError here, and Python's own protocol TypeError: both."""


class Instances:
    """Named fields of equal length describing the objects found in one image.

    Fields are read and written as attributes (``instances.gt_boxes = Boxes(...)``) or through
    ``set/get/has/remove``. Any field value must support ``len`` and indexing (Tensor, ``Boxes``,
    list...). Indexing an ``Instances`` indexes every field, so ``instances[scores > 0.5]`` keeps
    the confident objects in all fields at once.

    Attributes:
        image_size (tuple[int, int]): (height, width) of the image.
    """

    def __init__(self, image_size: tuple[int, int], **kwargs: Any) -> None:
        """
        Args:
            image_size (tuple[int, int]): (height, width) of the image.
            **kwargs: fields to set.
        """
        self._image_size = image_size
        self._fields: dict[str, Any] = {}
        for k, v in kwargs.items():
            self.set(k, v)

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of the image."""
        return self._image_size

    def __setattr__(self, name: str, val: Any) -> None:
        if name.startswith("_"):
            super().__setattr__(name, val)
        else:
            self.set(name, val)

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails; "_fields" is guarded to keep unpickling (which
        # probes attributes before __init__ has run) from recursing.
        if name == "_fields" or name not in self._fields:
            raise AttributeError(f"Cannot find field '{name}' in the given Instances!")
        return self._fields[name]

    def set(self, name: str, value: Any) -> None:
        """Set field ``name``; its length must match the existing fields."""
        data_len = len(value)
        if len(self._fields):
            assert len(self) == data_len, (
                f"Adding a field '{name}' of length {data_len} to an Instances of length "
                f"{len(self)}"
            )
        self._fields[name] = value

    def has(self, name: str) -> bool:
        """Return whether field ``name`` exists."""
        return name in self._fields

    def remove(self, name: str) -> None:
        """Remove field ``name``."""
        del self._fields[name]

    def get(self, name: str) -> Any:
        """Return field ``name``."""
        return self._fields[name]

    def get_fields(self) -> dict[str, Any]:
        """Return the dict of fields (the live dict: changing it changes the instances)."""
        return self._fields

    def to(self, *args: Any, **kwargs: Any) -> Instances:
        """Return a copy whose fields that have a ``to`` method are moved/cast with these args."""
        ret = Instances(self._image_size)
        for k, v in self._fields.items():
            if hasattr(v, "to"):
                v = v.to(*args, **kwargs)
            ret.set(k, v)
        return ret

    def __getitem__(self, item: int | slice | torch.Tensor) -> Instances:
        """Index every field with an int, a slice, a bool mask or an index tensor."""
        if type(item) == int:
            if item >= len(self) or item < -len(self):
                raise IndexError(f"Instances index {item} out of range (length {len(self)})")
            # A plain int would drop the leading dim of tensor fields; a slice keeps it.
            item = slice(item, None, len(self))
        ret = Instances(self._image_size)
        for k, v in self._fields.items():
            ret.set(k, v[item])
        return ret

    def __len__(self) -> int:
        """Number of objects; 0 when no field is set yet."""
        for v in self._fields.values():
            return len(v)
        return 0

    def __iter__(self):
        # Iterating would silently yield nothing useful; a field-wise loop is what callers want.
        raise _NotIterableError("`Instances` object is not iterable; index it or iterate a field")

    @staticmethod
    def cat(instance_lists: list[Instances]) -> Instances:
        """Concatenate instances of the same image size and fields into one.

        Args:
            instance_lists (list[Instances]): at least one element.
        """
        assert all(isinstance(i, Instances) for i in instance_lists)
        assert len(instance_lists) > 0, "Instances.cat needs at least one Instances"
        if len(instance_lists) == 1:
            return instance_lists[0]
        image_size = instance_lists[0].image_size
        if not isinstance(image_size, torch.Tensor):
            for i in instance_lists[1:]:
                assert (
                    i.image_size == image_size
                ), f"Instances.cat of different image sizes {image_size} and {i.image_size}"
        ret = Instances(image_size)
        for k in instance_lists[0]._fields.keys():
            values = [i.get(k) for i in instance_lists]
            v0 = values[0]
            if isinstance(v0, torch.Tensor):
                values = torch.cat(values, dim=0)
            elif isinstance(v0, list):
                values = list(itertools.chain(*values))
            elif hasattr(type(v0), "cat"):
                values = type(v0).cat(values)
            else:
                raise ValueError(f"Unsupported type {type(v0)} for concatenation of field '{k}'")
            ret.set(k, values)
        return ret

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}: {v}" for k, v in self._fields.items())
        return (
            f"{self.__class__.__name__}(num_instances={len(self)}, "
            f"image_height={self._image_size[0]}, image_width={self._image_size[1]}, "
            f"fields=[{fields}])"
        )

    __str__ = __repr__
