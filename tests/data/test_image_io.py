from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from d2lite.data import detection_utils, image_io
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


def _gray16(tmp_path, values, name="g16.png"):
    path = tmp_path / name
    Image.fromarray(np.asarray(values, np.uint16)).save(path)
    assert Image.open(path).mode == "I;16"
    return str(path)


def test_16_bit_png_is_scaled_from_the_full_16_bit_range(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(image_io, "_warned_modes", set())  # another test may have warned
    path = _gray16(tmp_path, [[0, 255, 256, 30000, 65535]])
    with caplog.at_level(logging.WARNING, logger="d2lite.data.image_io"):
        rgb = read_image(path, format="RGB")
        read_image(path, format="BGR")
    # Today PIL clips: everything above 255 turns white.
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 5, 3)
    assert rgb[0, :, 0].tolist() == [0, 0, 1, 117, 255]  # value >> 8, as cv2.imread gives
    assert (rgb == rgb[:, :, :1]).all()
    assert read_image(path, format="L")[0, :, 0].tolist() == [0, 0, 1, 117, 255]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "g16.png" in warnings[0] and "I;16" in warnings[0]


@pytest.mark.parametrize(
    "array, expected",
    [
        (np.array([[-5, 0, 995, 2995]], np.int32), [0, 0, 85, 255]),
        (np.array([[0.25, 0.5, 0.75, 1.25]], np.float32), [0, 64, 128, 255]),
    ],
)
def test_32_bit_images_are_scaled_from_their_own_range(tmp_path, array, expected):
    path = tmp_path / "wide.tiff"
    Image.fromarray(array).save(path)
    assert Image.open(path).mode in ("I", "F")
    assert read_image(str(path), format="L")[0, :, 0].tolist() == expected
    constant = tmp_path / "flat.tiff"
    Image.fromarray(np.full((2, 2), 7, array.dtype)).save(constant)
    assert (read_image(str(constant)) == 0).all()


def test_high_bit_depth_kept_when_that_mode_is_asked_for(tmp_path):
    path = _gray16(tmp_path, [[0, 40000]])
    raw = read_image(path, format="I;16")
    assert raw[0, :, 0].tolist() == [0, 40000]


@pytest.mark.parametrize("mode", ["L", "P", "RGB", "RGBA", "LA", "CMYK"])
def test_8_bit_images_convert_exactly_as_pil_does(tmp_path, mode):
    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 256, (5, 6, 3), np.uint8)).convert(mode)
    path = tmp_path / ("x.jpg" if mode == "CMYK" else "x.png")
    image.save(path)
    stored = Image.open(path)
    expected = np.asarray(stored.convert("RGBA" if mode == "P" else "RGB").convert("RGB"))
    assert np.array_equal(read_image(str(path), format="RGB"), expected)
    assert np.array_equal(read_image(str(path), format="BGR"), expected[:, :, ::-1])


def test_16_bit_conversion_equals_opencv(tmp_path):
    cv2 = pytest.importorskip("cv2")
    path = _gray16(tmp_path, np.arange(65536).reshape(256, 256), name="all16.png")
    assert np.array_equal(read_image(path, format="BGR"), cv2.imread(path))
