"""Dataset loaders and the built-in registrations (made when this package is imported)."""

from .builtin import TRASH_CLASSES, get_builtin_root, register_all_builtin
from .coco import (
    convert_to_coco_dict,
    convert_to_coco_json,
    load_coco_json,
    register_coco_instances,
)

__all__ = [
    "load_coco_json",
    "register_coco_instances",
    "convert_to_coco_dict",
    "convert_to_coco_json",
    "register_all_builtin",
    "get_builtin_root",
    "TRASH_CLASSES",
]

register_all_builtin()
