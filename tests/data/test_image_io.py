from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from d2lite.data import detection_utils
from d2lite.data.image_io import convert_image_to_rgb, read_image


def test_convert_image_to_rgb_from_each_format():
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[0, 0] = (10, 20, 30)
    assert np.array_equal(convert_image_to_rgb(rgb[:, :, ::-1], "BGR"), rgb)
    assert np.array_equal(convert_image_to_rgb(torch.from_numpy(rgb.copy()), "RGB"), rgb)
    gray = np.full((2, 3, 1), 77, np.uint8)
    out = convert_image_to_rgb(gray, "L")
    assert out.shape == (2, 3, 3) and (out == 77).all()


def test_yuv_format_round_trips(tmp_path):
    arr = np.zeros((2, 2, 3), np.uint8)
    arr[0, 0] = (200, 100, 50)
    arr[1, 1] = (128, 128, 128)
    path = tmp_path / "y.png"
    Image.fromarray(arr).save(path)
    yuv = read_image(str(path), format="YUV-BT.601")
    assert yuv.dtype == np.float64 and yuv.shape == (2, 2, 3)
    assert yuv[1, 1, 0] == pytest.approx(128 / 255) and abs(yuv[1, 1, 1:]).max() < 1e-3
    back = convert_image_to_rgb(yuv, "YUV-BT.601")
    assert np.allclose(back, arr, atol=0.5)


def test_detection_utils_reexports_the_image_functions():
    assert detection_utils.read_image is read_image
    assert detection_utils.convert_image_to_rgb is convert_image_to_rgb
