"""Detectron2's own transforms in d2lite: extent, colour wrappers, float resize through
``F.interpolate``, OpenCV rotation flags, and fvcore's ScaleTransform."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageOps

import d2lite.data.transforms as T

def test_color_transforms_change_pixels_only():
    rng = np.random.RandomState(0)
    img = rng.randint(0, 256, (6, 7, 3)).astype(np.uint8)
    double = T.ColorTransform(lambda x: x * 2.0)
    assert np.array_equal(double.apply_image(img), img * 2.0)
    coords = np.array([[1.0, 2.0]])
    assert double.apply_coords(coords) is coords
    seg = img[..., 0]
    assert double.apply_segmentation(seg) is seg
    assert isinstance(double.inverse(), T.NoOpTransform)
    invert = T.PILColorTransform(ImageOps.invert)
    out = invert.apply_image(img)
    assert np.array_equal(out, 255 - img) and out.flags.writeable
    with pytest.raises(ValueError, match="callable"):
        T.ColorTransform(3)
    with pytest.raises(ValueError, match="callable"):
        T.PILColorTransform("solarize")


def test_extent_transform_identity_zoom_and_fill():
    img = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    same = T.ExtentTransform((0, 0, 6, 4), (4, 6))
    assert np.array_equal(same.apply_image(img), img)
    assert np.allclose(same.apply_coords(np.array([[1.5, 2.0]])), [[1.5, 2.0]])
    # The centre half, blown up to twice the size: x -> (x - 1.5) * 2.
    zoom = T.ExtentTransform((1.5, 1, 4.5, 3), (4, 6))
    assert np.allclose(zoom.apply_box(np.array([[1.5, 1.0, 3.0, 2.0]])), [[0, 0, 3, 2]])
    # A rect twice the image, centred: the image sits in the middle, the rest is `fill`.
    out = T.ExtentTransform((-3, -2, 9, 6), (8, 12), fill=9).apply_image(img)
    assert out.shape == (8, 12, 3)
    assert (out[0, 0] == 9).all() and (out[-1, -1] == 9).all()
    assert np.array_equal(out[2:6, 3:9], img)
    for shape in [(4, 6), (4, 6, 1)]:
        assert zoom.apply_image(np.zeros(shape, np.uint8)).shape == (4, 6) + shape[2:]
    assert zoom.apply_image(np.zeros((4, 6, 3), np.float32)).dtype == np.float32


def test_extent_segmentation_stays_nearest():
    seg = np.zeros((8, 8), np.uint8)
    seg[:, 3:] = 7
    out = T.ExtentTransform((1, 1, 6, 6), (16, 16)).apply_segmentation(seg)
    assert set(np.unique(out)) == {0, 7}


def test_float_resize_uses_interpolate_with_half_pixel_centres():
    ramp = np.array([[0.0, 1.0]], dtype=np.float32)
    out = T.ResizeTransform(1, 2, 1, 4).apply_image(ramp)
    assert out.dtype == np.float32
    assert np.allclose(out, [[0.0, 0.25, 0.75, 1.0]])  # align_corners=False, no antialias
    img = np.random.RandomState(1).rand(10, 8, 3)
    t = T.ResizeTransform(10, 8, 5, 4)
    for shape in [(10, 8), (10, 8, 1), (10, 8, 3)]:
        res = t.apply_image(img[..., : (shape[2] if len(shape) == 3 else 1)].reshape(shape))
        assert res.shape == (5, 4) + shape[2:] and res.dtype == np.float64
    # Filters torch lacks still work on floats, through PIL.
    assert t.apply_image(img.astype(np.float32), interp=Image.LANCZOS).shape == (5, 4, 3)
    nearest = t.apply_segmentation(np.repeat(np.arange(8.0)[None], 10, 0))
    assert set(np.unique(nearest)) <= set(range(8))


def test_rotation_interp_is_an_opencv_flag():
    t = T.RotationTransform(20, 30, 45)
    assert t.interp == 1  # cv2.INTER_LINEAR, as Detectron2 stores it
    labels = np.zeros((20, 30), np.uint8)
    labels[5:15, 5:25] = 4
    nearest = T.RotationTransform(20, 30, 45, interp=0).apply_image(labels)
    assert set(np.unique(nearest)) == {0, 4}
    linear = t.apply_image(labels)
    assert len(np.unique(linear)) > 2
    assert T.RotationTransform(20, 30, 45, interp=2).apply_image(labels).shape == linear.shape
    with pytest.raises(ValueError, match="interpolation flag"):
        T.RotationTransform(20, 30, 45, interp=99).apply_image(labels)


def test_scale_transform_from_fvcore_resizes():
    out = T.ScaleTransform(4, 6, 8, 3, "bilinear").apply_image(np.ones((4, 6, 3), np.float32))
    assert out.shape == (8, 3, 3) and np.allclose(out, 1.0)
