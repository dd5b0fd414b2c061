from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from d2lite.layers import (
    CNNBlockBase,
    Conv2d,
    FrozenBatchNorm2d,
    ShapeSpec,
    cat,
    cross_entropy,
    get_norm,
    move_device_like,
    nonzero_tuple,
    shapes_to_tensor,
)


def test_conv2d_norm_activation_and_state_names():
    conv = Conv2d(3, 4, 3, padding=1, bias=False, norm=get_norm("BN", 4), activation=F.relu)
    assert set(conv.state_dict()) >= {"weight", "norm.weight", "norm.bias", "norm.running_mean"}
    out = conv(torch.randn(2, 3, 8, 6))
    assert out.shape == (2, 4, 8, 6)
    assert (out >= 0).all()


def test_conv2d_empty_input():
    conv = Conv2d(3, 4, 3, padding=1)
    assert conv(torch.zeros(0, 3, 8, 8)).shape == (0, 4, 8, 8)


def test_cat_single_and_many():
    a = torch.ones(2, 3)
    assert cat([a]) is a
    assert cat([a, a], dim=1).shape == (2, 6)


def test_nonzero_tuple():
    (idx,) = nonzero_tuple(torch.tensor([0, 1, 0, 1]))
    assert idx.tolist() == [1, 3]
    (idx,) = nonzero_tuple(torch.tensor(True))
    assert idx.tolist() == [0]


def test_cross_entropy_empty_is_zero_with_grad():
    logits = torch.zeros(0, 3, requires_grad=True)
    loss = cross_entropy(logits, torch.zeros(0, dtype=torch.int64))
    assert loss.item() == 0.0
    loss.backward()
    full = cross_entropy(torch.tensor([[0.0, 10.0]]), torch.tensor([1]))
    assert full.item() < 1e-3


def test_move_device_like_and_shapes_to_tensor():
    assert move_device_like(torch.ones(1), torch.zeros(2)).device == torch.zeros(2).device
    assert shapes_to_tensor([3, 4]).tolist() == [3, 4]
    assert shapes_to_tensor([torch.tensor(3), torch.tensor(5)]).tolist() == [3, 5]


def test_cnn_block_base_freeze():
    block = CNNBlockBase(3, 8, 2)
    block.conv = Conv2d(3, 8, 1, bias=False, norm=nn.BatchNorm2d(8))
    block.freeze()
    assert all(not p.requires_grad for p in block.parameters())
    assert isinstance(block.conv.norm, FrozenBatchNorm2d)
    assert (block.in_channels, block.out_channels, block.stride) == (3, 8, 2)


def test_shape_spec_reexported():
    assert ShapeSpec(channels=3).channels == 3


def test_torch_layers_under_detectron2_names():
    from d2lite.layers import BatchNorm2d, ConvTranspose2d, Linear, interpolate

    assert (BatchNorm2d, ConvTranspose2d, Linear) == (nn.BatchNorm2d, nn.ConvTranspose2d, nn.Linear)
    assert interpolate is F.interpolate
    assert interpolate(torch.zeros(0, 2, 4, 4), scale_factor=2).shape == (0, 2, 8, 8)


def test_empty_input_loss_func_wrapper():
    from d2lite.layers import empty_input_loss_func_wrapper

    mse = empty_input_loss_func_wrapper(F.mse_loss)
    assert mse.__name__ == "mse_loss"
    pred = torch.zeros(0, 2, requires_grad=True)
    loss = mse(pred, torch.zeros(0, 2))
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    # Only "mean" over nothing is NaN; other reductions and non-empty inputs are F's own.
    assert mse(pred, torch.zeros(0, 2), reduction="sum").item() == 0.0
    x, y = torch.tensor([1.0, 3.0]), torch.tensor([0.0, 0.0])
    assert mse(x, y).item() == pytest.approx(5.0)
    assert mse(x, y, reduction="none").tolist() == [1.0, 9.0]


def test_depthwise_separable_conv():
    from d2lite.layers import DepthwiseSeparableConv2d

    block = DepthwiseSeparableConv2d(4, 6, norm1="BN", activation1=nn.PReLU(), norm2="")
    assert block.depthwise.groups == 4 and block.depthwise.weight.shape == (4, 1, 3, 3)
    assert block.depthwise.bias is None and isinstance(block.depthwise.norm, nn.BatchNorm2d)
    assert block.pointwise.norm is None and block.pointwise.bias.abs().sum() == 0
    assert block(torch.randn(2, 4, 7, 5)).shape == (2, 6, 7, 5)
    dilated = DepthwiseSeparableConv2d(3, 3, kernel_size=3, padding=2, dilation=2)
    assert dilated(torch.randn(1, 3, 9, 9)).shape == (1, 3, 9, 9)


@pytest.mark.parametrize(
    "name", ["ASPP", "DeformConv", "ModulatedDeformConv", "ROIAlignRotated"]
)
def test_out_of_scope_modules_import_and_refuse(name):
    import d2lite.layers as layers

    cls = getattr(layers, name)
    assert issubclass(cls, nn.Module)
    with pytest.raises(NotImplementedError, match=name):
        cls(3, 10)


@pytest.mark.parametrize(
    "name", ["roi_align_rotated", "nms_rotated", "batched_nms_rotated", "paste_masks_in_image"]
)
def test_out_of_scope_functions_import_and_refuse(name):
    import d2lite.layers as layers

    with pytest.raises(NotImplementedError, match=name):
        getattr(layers, name)(torch.zeros(1, 5))


def test_roi_align_function_is_torchvisions():
    import importlib

    import torchvision

    from d2lite.layers import roi_align

    assert roi_align is torchvision.ops.roi_align
    assert importlib.import_module("d2lite.layers.roi_align").roi_align is roi_align
