from __future__ import annotations

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
