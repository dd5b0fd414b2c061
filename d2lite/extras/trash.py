"""The trash datasets of the course (10 classes) under the names its scripts and configs use.

Nothing registers them at import: course scripts register ``coco_trash_*`` themselves (with a
``try: ... except AssertionError: pass`` around the call, as on Detectron2), and the ``d2lite``
commands and the demo call :func:`register_trash_datasets` when their config names one of them.
"""
from __future__ import annotations

import os
from collections.abc import Iterable

from d2lite.data.catalog import DatasetCatalog
from d2lite.data.datasets.builtin import get_builtin_root
from d2lite.data.datasets.coco import register_coco_instances

__all__ = ["TRASH_CLASSES", "TRASH_DATASETS", "register_trash_datasets"]

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

# name -> split; each split is <root>/<split>.json with its images under <root>.
TRASH_DATASETS = {f"coco_trash_{split}": split for split in ("train", "val", "test")}


def register_trash_datasets(
    names: Iterable[str] = tuple(TRASH_DATASETS), data_dir: str | None = None
) -> list[str]:
    """Registers those of ``names`` that are trash datasets and are not registered yet.

    A name a script has already registered keeps that registration, whatever its files.

    Args:
        names (Iterable[str]): dataset names, e.g. a config's ``DATASETS.TRAIN + DATASETS.TEST``;
            names other than ``coco_trash_{train,val,test}`` are ignored. Defaults to all three.
        data_dir (str | None): the folder of ``train.json``, ``val.json``, ``test.json`` and
            their images. Defaults to None (``get_builtin_root()/trash``, where ``make demo``
            writes them).

    Returns:
        list[str]: the names registered by this call.
    """
    data_dir = os.path.join(get_builtin_root(), "trash") if data_dir is None else data_dir
    wanted = [n for n in dict.fromkeys(names) if n in TRASH_DATASETS and n not in DatasetCatalog]
    for name in wanted:
        json_file = os.path.join(data_dir, f"{TRASH_DATASETS[name]}.json")
        register_coco_instances(name, {"thing_classes": TRASH_CLASSES}, json_file, data_dir)
    return wanted
