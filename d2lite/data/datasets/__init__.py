"""Dataset loaders, and Detectron2's COCO 2017 registrations (made when this package is imported).

Detectron2's loaders for other tasks and datasets (LVIS, Pascal VOC, COCO panoptic) import,
and raise ``NotImplementedError`` when called.
"""

from ...utils.unsupported import unsupported_function
from .builtin import get_builtin_root, register_all_coco
from .coco import (
    DatasetAlreadyRegisteredError,
    convert_to_coco_dict,
    convert_to_coco_json,
    load_coco_json,
    load_sem_seg,
    register_coco_instances,
)
from .coco_register import parse_dataset_arg, setup_coco_datasets

_LVIS = "LVIS datasets (federated, long-tailed instance segmentation)"
_VOC = "Pascal VOC datasets"
_PANOPTIC = "COCO panoptic segmentation datasets"
load_lvis_json = unsupported_function("load_lvis_json", _LVIS, __name__)
register_lvis_instances = unsupported_function("register_lvis_instances", _LVIS, __name__)
get_lvis_instances_meta = unsupported_function("get_lvis_instances_meta", _LVIS, __name__)
load_voc_instances = unsupported_function("load_voc_instances", _VOC, __name__)
register_pascal_voc = unsupported_function("register_pascal_voc", _VOC, __name__)
register_coco_panoptic = unsupported_function("register_coco_panoptic", _PANOPTIC, __name__)
register_coco_panoptic_separated = unsupported_function(
    "register_coco_panoptic_separated", _PANOPTIC, __name__
)

__all__ = [
    "load_coco_json",
    "load_sem_seg",
    "register_coco_instances",
    "convert_to_coco_dict",
    "convert_to_coco_json",
    "load_lvis_json",
    "register_lvis_instances",
    "get_lvis_instances_meta",
    "load_voc_instances",
    "register_pascal_voc",
    "register_coco_panoptic",
    "register_coco_panoptic_separated",
    "register_all_coco",
    "DatasetAlreadyRegisteredError",
    "get_builtin_root",
    "parse_dataset_arg",
    "setup_coco_datasets",
]

register_all_coco(get_builtin_root())
