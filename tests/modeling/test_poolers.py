import pytest
import torch
from torchvision.ops import roi_align

from d2lite.modeling.poolers import (
    ROIPooler,
    assign_boxes_to_levels,
    convert_boxes_to_pooler_format,
)
from d2lite.structures import Boxes


def test_assign_boxes_to_levels_golden():
    sizes = [224.0, 112.0, 111.0, 448.0, 1000.0, 10.0, 0.0]
    boxes = Boxes(torch.tensor([[0.0, 0.0, s, s] for s in sizes]))
    levels = assign_boxes_to_levels([boxes], 2, 5, 224, 4)
    # 224 -> level 4, 112 -> 3, just under 112 -> 2, 448 -> 5, huge -> clamp 5, tiny -> clamp 2.
    assert levels.tolist() == [2, 1, 0, 3, 3, 0, 0]
    assert levels.dtype == torch.int64


def test_convert_boxes_to_pooler_format():
    b0 = Boxes(torch.tensor([[1.0, 2, 3, 4]]))
    b1 = Boxes(torch.zeros(0, 4))
    b2 = Boxes(torch.tensor([[5.0, 6, 7, 8], [9.0, 10, 11, 12]]))
    out = convert_boxes_to_pooler_format([b0, b1, b2])
    expected = torch.tensor([[0.0, 1, 2, 3, 4], [2, 5, 6, 7, 8], [2, 9, 10, 11, 12]])
    torch.testing.assert_close(out, expected)


def test_multi_level_matches_direct_roi_align():
    torch.manual_seed(0)
    pooler = ROIPooler(
        7,
        scales=[1 / 4, 1 / 8],
        sampling_ratio=0,
        pooler_type="ROIAlignV2",
        canonical_box_size=32,
        canonical_level=3,
    )
    feats = [torch.randn(2, 3, 32, 32), torch.randn(2, 3, 16, 16)]
    small = torch.tensor([[4.0, 4, 20, 20]])  # size 16 -> level 2 (p2)
    big = torch.tensor([[8.0, 8, 72, 72]])  # size 64 -> level 4, clamped to 3 (p3)
    out = pooler(feats, [Boxes(small), Boxes(torch.cat([big, small]))])
    assert out.shape == (3, 3, 7, 7)
    exp0 = roi_align(feats[0], [small, torch.zeros(0, 4)], 7, 1 / 4, 0, aligned=True)
    exp1 = roi_align(feats[1], [torch.zeros(0, 4), big], 7, 1 / 8, 0, aligned=True)
    exp2 = roi_align(feats[0], [torch.zeros(0, 4), small], 7, 1 / 4, 0, aligned=True)
    torch.testing.assert_close(out[0], exp0[0])
    torch.testing.assert_close(out[1], exp1[0])
    torch.testing.assert_close(out[2], exp2[0])


@pytest.mark.parametrize("pooler_type", ["ROIAlignV2", "ROIAlign", "ROIPool"])
def test_zero_boxes_and_types(pooler_type):
    pooler = ROIPooler((5, 5), scales=[1 / 4, 1 / 8], sampling_ratio=2, pooler_type=pooler_type)
    feats = [torch.randn(2, 4, 16, 16), torch.randn(2, 4, 8, 8)]
    out = pooler(feats, [Boxes(torch.zeros(0, 4)), Boxes(torch.zeros(0, 4))])
    assert out.shape == (0, 4, 5, 5)
    out = pooler(feats, [Boxes(torch.tensor([[0.0, 0, 30, 30]])), Boxes(torch.zeros(0, 4))])
    assert out.shape == (1, 4, 5, 5) and torch.isfinite(out).all()


def test_bad_configuration():
    with pytest.raises(ValueError, match="Unknown pooler type 'ROIAlignV3'"):
        ROIPooler(7, scales=[1 / 4], sampling_ratio=0, pooler_type="ROIAlignV3")
    with pytest.raises(ValueError, match="powers of 1/2"):
        ROIPooler(7, scales=[1 / 3, 1 / 8], sampling_ratio=0, pooler_type="ROIAlign")
    with pytest.raises(ValueError, match="consecutive"):
        ROIPooler(7, scales=[1 / 4, 1 / 16], sampling_ratio=0, pooler_type="ROIAlign")
