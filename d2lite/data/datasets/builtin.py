"""Datasets registered when ``d2lite.data`` is imported: the trash datasets and COCO 2017.

Their files live under the directory named by the environment variable ``D2LITE_DATASETS``
(default ``./datasets``), read when ``register_all_builtin()`` runs, i.e. at import of
``d2lite.data``. To point them elsewhere after import, call ``register_all_builtin(root)``.

A script that registers one of these names itself with ``register_coco_instances`` (as course
notebooks do for "coco_trash_train") replaces the built-in registration.
"""

from __future__ import annotations

import os

from ..catalog import DatasetCatalog, MetadataCatalog
from .coco import BUILTIN_NAMES, register_coco_instances

__all__ = ["TRASH_CLASSES", "get_builtin_root", "register_all_builtin"]

TRASH_CLASSES = [
    "General trash",
    "Paper",
    "Paper pack",
    "Metal",
    "Glass",
    "Plastic",
    "Styrofoam",
    "Plastic bag",
    "Battery",
    "Clothing",
]

# name -> (json file, image root), both relative to the datasets root.
_BUILTIN_TRASH = {
    f"coco_trash_{split}": (f"trash/{split}.json", "trash/") for split in ("train", "val", "test")
}
_BUILTIN_COCO = {
    "coco_2017_train": ("coco/annotations/instances_train2017.json", "coco/train2017"),
    "coco_2017_val": ("coco/annotations/instances_val2017.json", "coco/val2017"),
}


def get_builtin_root() -> str:
    """Return ``$D2LITE_DATASETS`` (``~`` expanded), or ``"datasets"`` when it is unset."""
    return os.path.expanduser(os.getenv("D2LITE_DATASETS", "datasets"))


def register_all_builtin(root: str | None = None) -> None:
    """(Re-)register the built-in datasets with their files under ``root``.

    Existing registrations of these names are replaced, so the call can be repeated with a new
    root.

    Args:
        root (str | None): the datasets directory. Defaults to None (``get_builtin_root()``).
    """
    root = get_builtin_root() if root is None else os.fspath(root)
    groups = ((_BUILTIN_TRASH, {"thing_classes": TRASH_CLASSES}), (_BUILTIN_COCO, {}))
    for names, metadata in groups:
        for name, (json_file, image_root) in names.items():
            if name in DatasetCatalog:
                DatasetCatalog.remove(name)
            if name in MetadataCatalog:
                MetadataCatalog.remove(name)
            register_coco_instances(
                name, metadata, os.path.join(root, json_file), os.path.join(root, image_root)
            )
            BUILTIN_NAMES.add(name)
