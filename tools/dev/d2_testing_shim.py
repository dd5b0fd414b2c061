"""Stands in for ``detectron2.utils.testing`` when Detectron2's tests run against d2lite.

Only the helpers that the in-scope test files import, written for d2lite; the TorchScript and
ONNX helpers raise ``unittest.SkipTest`` because d2lite has no export path.
"""
from __future__ import annotations

import unittest

import numpy as np
import torch

from d2lite import model_zoo
from d2lite.modeling import build_model
from d2lite.structures import Boxes, Instances


def get_model_no_weights(config_path: str):
    """Builds the model of a model-zoo config on the CPU when CUDA is missing, without weights."""
    cfg = model_zoo.get_config(config_path)
    if not torch.cuda.is_available():
        cfg.MODEL.DEVICE = "cpu"
    return build_model(cfg)


def random_boxes(num_boxes: int, max_coord: int = 100, device: str = "cpu") -> torch.Tensor:
    """Random XYXY boxes with coordinates below ``max_coord`` and sides of at least 1."""
    xy = torch.rand(num_boxes, 2, device=device) * (max_coord * 0.5)
    wh = torch.rand(num_boxes, 2, device=device) * (max_coord * 0.5)
    xy = xy.clamp(min=1.0)
    return torch.cat([xy, xy + wh.clamp(min=1.0)], dim=1)


def get_sample_coco_image(tensor: bool = True):
    """A fixed synthetic BGR picture (no download here): shapes on a gradient, 480x640."""
    rng = np.random.default_rng(0)
    img = np.zeros((480, 640, 3), dtype=np.uint8)
    img[..., 0] = np.linspace(0, 255, 640, dtype=np.uint8)[None, :]
    img[..., 1] = np.linspace(0, 255, 480, dtype=np.uint8)[:, None]
    for _ in range(6):
        x0, y0 = rng.integers(0, 500), rng.integers(0, 360)
        img[y0 : y0 + 100, x0 : x0 + 120] = rng.integers(0, 255, size=3)
    if tensor:
        return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
    return img


def convert_scripted_instances(instances):
    raise unittest.SkipTest("d2lite has no TorchScript export")


def reload_script_model(module):
    raise unittest.SkipTest("d2lite has no TorchScript export")


def assert_instances_allclose(input, other, *, rtol=1e-5, msg="", size_as_tensor=False):
    """Asserts two ``Instances`` have the same size, fields and (close) values."""
    prefix = (msg.rstrip() + " ") if msg else "Two Instances are different! "
    if size_as_tensor:
        assert torch.equal(torch.tensor(input.image_size), torch.tensor(other.image_size)), prefix
    else:
        assert input.image_size == other.image_size, prefix + f"{input.image_size} vs {other.image_size}"
    names, other_names = sorted(input.get_fields()), sorted(other.get_fields())
    assert names == other_names, prefix + f"fields {names} vs {other_names}"
    for name in names:
        a, b = input.get(name), other.get(name)
        if isinstance(a, Boxes):
            assert torch.allclose(a.tensor, b.tensor, atol=100 * rtol), prefix + name
        elif isinstance(a, torch.Tensor) and a.dtype.is_floating_point:
            scale = a.abs().max().item() if a.numel() else 0.0
            assert torch.allclose(a, b, atol=scale * rtol), prefix + name
        elif isinstance(a, torch.Tensor):
            assert torch.equal(a, b), prefix + name
        else:
            raise ValueError(f"cannot compare a field of type {type(a)}")


def skipIfOnCPUCI(func):
    return func
