import pytest
import torch

from d2lite.structures import Boxes, RotatedBoxes, pairwise_iou_rotated
from d2lite.structures.rotated_boxes import pairwise_iou


def test_rotated_boxes_import_and_raise():
    # A Boxes subclass as in Detectron2, so isinstance checks in user code answer the same.
    assert issubclass(RotatedBoxes, Boxes)
    assert RotatedBoxes.__module__ == "d2lite.structures.rotated_boxes"
    with pytest.raises(NotImplementedError, match="RotatedBoxes.*rotated boxes"):
        RotatedBoxes(torch.zeros(2, 5))
    assert pairwise_iou_rotated is pairwise_iou
    with pytest.raises(NotImplementedError, match="pairwise_iou_rotated"):
        pairwise_iou(None, None)
