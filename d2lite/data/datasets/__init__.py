"""Dataset loaders, and Detectron2's COCO 2017 registrations (made when this package is imported).

Detectron2's loaders for other tasks and datasets (LVIS, Pascal VOC, COCO panoptic) import,
and raise ``NotImplementedError`` when called.
"""

from ...utils.unsupported import unsupported_function
from . import builtin, coco
from .builtin import *  # noqa: F401,F403
from .coco import *  # noqa: F401,F403
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
    *coco.__all__,
    "load_lvis_json",
    "register_lvis_instances",
    "get_lvis_instances_meta",
    "load_voc_instances",
    "register_pascal_voc",
    "register_coco_panoptic",
    "register_coco_panoptic_separated",
    *builtin.__all__,
    "parse_dataset_arg",
    "setup_coco_datasets",
]

builtin.register_all_coco(builtin.get_builtin_root())
