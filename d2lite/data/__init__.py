"""Data pipeline: catalogs, COCO loading, transforms, the mapper, samplers and loaders.

Importing it registers Detectron2's predefined COCO 2017 datasets and nothing else (see
``d2lite.data.datasets.builtin``; the trash data of the demo: ``d2lite.extras.trash``).
"""

from . import datasets, detection_utils, samplers, transforms
from .build import (
    build_batch_data_loader,
    build_detection_test_loader,
    build_detection_train_loader,
    get_detection_dataset_dicts,
    load_proposals_into_dataset,
    print_instances_class_histogram,
    trivial_batch_collator,
)
from .catalog import DatasetCatalog, Metadata, MetadataCatalog
from .common import DatasetFromList, MapDataset, ToIterableDataset
from .dataset_mapper import DatasetMapper

__all__ = [
    "DatasetCatalog",
    "MetadataCatalog",
    "Metadata",
    "DatasetFromList",
    "MapDataset",
    "ToIterableDataset",
    "DatasetMapper",
    "build_batch_data_loader",
    "build_detection_train_loader",
    "build_detection_test_loader",
    "get_detection_dataset_dicts",
    "load_proposals_into_dataset",
    "print_instances_class_histogram",
    "trivial_batch_collator",
    "datasets",
    "detection_utils",
    "samplers",
    "transforms",
]
