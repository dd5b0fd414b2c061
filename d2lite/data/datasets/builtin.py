"""Detectron2's predefined COCO 2017 detection datasets, registered when ``d2lite.data`` is
imported, as in Detectron2.

Their files live under ``$D2LITE_DATASETS`` (default ``./datasets``): ``coco/annotations/
instances_{train,val}2017.json`` and ``coco/{train,val}2017/``. No other name is registered at
import; the course's trash datasets are registered by the scripts that use them (see
``d2lite.extras.trash``).
"""

from __future__ import annotations

import os

from .coco import register_coco_instances

__all__ = ["get_builtin_root", "register_all_coco"]

# name -> (json file, image root), both relative to the datasets root.
_PREDEFINED_COCO = {
    "coco_2017_train": ("coco/annotations/instances_train2017.json", "coco/train2017"),
    "coco_2017_val": ("coco/annotations/instances_val2017.json", "coco/val2017"),
}


def get_builtin_root() -> str:
    """Returns ``$D2LITE_DATASETS`` (``~`` expanded), or ``"datasets"`` when it is unset."""
    return os.path.expanduser(os.getenv("D2LITE_DATASETS", "datasets"))


def register_all_coco(root: str) -> None:
    """Registers the COCO 2017 datasets with their files under ``root``.

    Raises:
        AssertionError: if a name is already registered with other files.
    """
    for name, (json_file, image_root) in _PREDEFINED_COCO.items():
        register_coco_instances(
            name, {}, os.path.join(root, json_file), os.path.join(root, image_root)
        )
