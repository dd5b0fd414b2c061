from __future__ import annotations

import numpy as np
import pytest
import torch

from d2lite.structures import BitMasks, Boxes, Instances, PolygonMasks, ROIMasks
from d2lite.structures import polygons_to_bitmask


def _masks() -> BitMasks:
    m = torch.zeros(3, 6, 8)
    m[0, 1:3, 2:5] = 1  # rows 1-2, columns 2-4
    m[2, 5, 7] = 0.5  # any non-zero value is "on"
    return BitMasks(m)


def test_bitmasks_hold_index_and_move():
    masks = _masks()
    assert masks.tensor.dtype == torch.bool and masks.image_size == (6, 8) and len(masks) == 3
    assert masks.nonempty().tolist() == [True, False, True]
    assert len(masks[1]) == 1 and masks[1].tensor.shape == (1, 6, 8)
    assert len(masks[torch.tensor([True, False, True])]) == 2
    assert len(masks[torch.tensor([2, 2, 0, 1])]) == 4
    assert masks.to("cpu").device == torch.device("cpu")
    assert len(BitMasks.cat([masks, masks[:1]])) == 4
    assert len(list(masks)) == 3
    assert BitMasks(np.ones((2, 3, 3))).tensor.all()
    with pytest.raises(AssertionError, match=r"\[N, H, W\]"):
        BitMasks(torch.zeros(6, 8))


def test_bitmasks_bounding_boxes():
    boxes = _masks().get_bounding_boxes()
    assert isinstance(boxes, Boxes)
    assert boxes.tensor.tolist() == [[2, 1, 5, 3], [0, 0, 0, 0], [7, 5, 8, 6]]


def test_bitmasks_ride_along_in_instances():
    # Ground truth with masks goes through a box model: indexing and cat keep them aligned.
    inst = Instances((6, 8), gt_boxes=Boxes(torch.zeros(3, 4)), gt_masks=_masks())
    kept = inst[torch.tensor([0, 2])]
    assert kept.gt_masks.nonempty().tolist() == [True, True]
    assert len(Instances.cat([inst, kept]).gt_masks) == 5


def test_mask_head_operations_raise():
    masks = _masks()
    with pytest.raises(NotImplementedError, match="crop_and_resize.*d2lite covers"):
        masks.crop_and_resize(torch.zeros(3, 4), 7)
    with pytest.raises(NotImplementedError, match="from_polygon_masks"):
        BitMasks.from_polygon_masks([], 6, 8)
    with pytest.raises(NotImplementedError, match="from_roi_masks"):
        BitMasks.from_roi_masks(None, 6, 8)
    for cls in (PolygonMasks, ROIMasks):
        with pytest.raises(NotImplementedError, match=cls.__name__):
            cls([[[0, 0, 1, 0, 1, 1]]])


def test_polygons_to_bitmask_rasterises_every_polygon_of_an_instance():
    # Two squares of one instance; the Visualizer draws polygon ground truth through this.
    mask = polygons_to_bitmask([[1, 1, 3, 1, 3, 3, 1, 3], [5, 0, 7, 0, 7, 2, 5, 2]], 6, 8)
    assert mask.dtype == bool and mask.shape == (6, 8)
    assert mask[2, 2] and mask[1, 6] and not mask[4, 4] and not mask[0, 0]
    assert polygons_to_bitmask([], 6, 8).sum() == 0
