"""Data structures shared by the data pipeline and the model: boxes, instances, image batches."""

from .boxes import (
    Boxes,
    BoxMode,
    matched_pairwise_iou,
    pairwise_intersection,
    pairwise_ioa,
    pairwise_iou,
)
from .image_list import ImageList
from .instances import Instances

__all__ = [
    "BoxMode",
    "Boxes",
    "pairwise_intersection",
    "pairwise_iou",
    "pairwise_ioa",
    "matched_pairwise_iou",
    "ImageList",
    "Instances",
]
