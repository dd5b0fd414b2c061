from __future__ import annotations

import pytest
import torch

from d2lite.structures import ImageList


def test_pad_to_max_and_divisibility():
    a = torch.ones(3, 10, 15)
    b = torch.full((3, 17, 8), 2.0)
    il = ImageList.from_tensors([a, b], size_divisibility=8, pad_value=-1.0)
    assert il.tensor.shape == (2, 3, 24, 16)
    assert il.image_sizes == [(10, 15), (17, 8)]
    assert len(il) == 2
    assert torch.equal(il[0], a) and torch.equal(il[1], b)
    assert il.tensor[0, 0, 10, 0] == -1.0 and il.tensor[1, 0, 0, 8] == -1.0
    assert il.to("cpu").device == torch.device("cpu")


def test_single_image_and_no_divisibility():
    a = torch.arange(6.0).view(1, 2, 3)
    il = ImageList.from_tensors([a])
    assert il.tensor.shape == (1, 1, 2, 3) and torch.equal(il[0], a)
    il = ImageList.from_tensors([a], size_divisibility=4)
    assert il.tensor.shape == (1, 1, 4, 4)


def test_padding_constraints():
    a = torch.zeros(3, 5, 7)
    il = ImageList.from_tensors([a], padding_constraints={"square_size": 32})
    assert il.tensor.shape == (1, 3, 32, 32)
    il = ImageList.from_tensors([a, a], 0, padding_constraints={"size_divisibility": 16})
    assert il.tensor.shape == (2, 3, 16, 16)


def test_bad_inputs():
    with pytest.raises(AssertionError):
        ImageList.from_tensors([])
    with pytest.raises(AssertionError, match="leading dims"):
        ImageList.from_tensors([torch.zeros(3, 4, 4), torch.zeros(1, 4, 4)])


def test_square_size_is_rounded_up_to_the_divisibility():
    a = torch.zeros(3, 5, 7)
    il = ImageList.from_tensors([a], 8, padding_constraints={"square_size": 20})
    assert il.tensor.shape == (1, 3, 24, 24)
    constraints = {"square_size": 20, "size_divisibility": 0}
    assert ImageList.from_tensors([a], 8, padding_constraints=constraints).tensor.shape[-1] == 20
