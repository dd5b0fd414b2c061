import pytest
import torch

from d2lite.config import get_cfg
from d2lite.layers import ShapeSpec
from d2lite.modeling.anchor_generator import DefaultAnchorGenerator, build_anchor_generator


def test_golden_anchors_offset_0():
    gen = DefaultAnchorGenerator(
        sizes=[[32]], aspect_ratios=[[0.25, 1.0, 4.0]], strides=[4], offset=0.0
    )
    anchors = gen([torch.zeros(1, 8, 2, 2)])
    assert len(anchors) == 1
    expected = torch.tensor(
        [
            [-32.0, -8.0, 32.0, 8.0],
            [-16.0, -16.0, 16.0, 16.0],
            [-8.0, -32.0, 8.0, 32.0],
            [-28.0, -8.0, 36.0, 8.0],
            [-12.0, -16.0, 20.0, 16.0],
            [-4.0, -32.0, 12.0, 32.0],
            [-32.0, -4.0, 32.0, 12.0],
            [-16.0, -12.0, 16.0, 20.0],
            [-8.0, -28.0, 8.0, 36.0],
            [-28.0, -4.0, 36.0, 12.0],
            [-12.0, -12.0, 20.0, 20.0],
            [-4.0, -28.0, 12.0, 36.0],
        ]
    )
    torch.testing.assert_close(anchors[0].tensor, expected)


def test_offset_half_and_two_levels():
    gen = DefaultAnchorGenerator(sizes=[[8], [16]], aspect_ratios=[1.0], strides=[4, 8])
    a0, a1 = gen([torch.zeros(1, 1, 1, 2), torch.zeros(1, 1, 1, 1)])
    torch.testing.assert_close(a0.tensor, torch.tensor([[-2.0, -2, 6, 6], [2, -2, 10, 6]]))
    torch.testing.assert_close(a1.tensor, torch.tensor([[-4.0, -4, 12, 12]]))
    assert gen.num_anchors == [1, 1] and gen.num_cell_anchors == [1, 1] and gen.box_dim == 4


def test_cell_anchors_not_in_state_dict_and_cached():
    gen = DefaultAnchorGenerator(sizes=[[32, 64]], aspect_ratios=[[0.5, 1, 2]], strides=[8])
    assert len(gen.state_dict()) == 0
    assert gen.num_anchors == [6]
    f = [torch.zeros(2, 1, 3, 5)]
    first, second = gen(f)[0], gen(f)[0]
    assert first.tensor.shape == (3 * 5 * 6, 4)
    assert first.tensor.data_ptr() == second.tensor.data_ptr()
    assert gen([torch.zeros(1, 1, 4, 4)])[0].tensor.shape == (96, 4)


def test_from_config_broadcasts_and_validates():
    cfg = get_cfg()
    cfg.MODEL.ANCHOR_GENERATOR.SIZES = [[32], [64], [128]]
    shapes = [ShapeSpec(channels=8, stride=s) for s in (4, 8, 16)]
    gen = build_anchor_generator(cfg, shapes)
    assert gen.strides == [4, 8, 16] and gen.num_anchors == [3, 3, 3]
    assert gen.offset == 0.0
    with pytest.raises(ValueError, match="2 lists but there are 3 feature maps"):
        DefaultAnchorGenerator(sizes=[[1], [2]], aspect_ratios=[[1.0]], strides=[4, 8, 16])
    with pytest.raises(ValueError, match="offset"):
        DefaultAnchorGenerator(sizes=[[1]], aspect_ratios=[[1.0]], strides=[4], offset=1.0)


def test_constructed_from_cfg_like_detectron2():
    cfg = get_cfg()
    cfg.MODEL.ANCHOR_GENERATOR.SIZES = [[32, 64]]
    cfg.MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS = [[0.5, 1.0]]
    gen = DefaultAnchorGenerator(cfg, [ShapeSpec(stride=4), ShapeSpec(stride=8)])
    assert gen.strides == [4, 8] and gen.num_anchors == [4, 4] and gen.offset == 0.0
    shifted = DefaultAnchorGenerator(cfg, [ShapeSpec(stride=4)], offset=0.5)  # kwarg wins
    a, b = gen([torch.zeros(1, 1, 1, 1)])[0], shifted([torch.zeros(1, 1, 1, 1)])[0]
    torch.testing.assert_close(b.tensor - a.tensor, torch.full((4, 4), 2.0))
