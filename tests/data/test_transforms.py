from __future__ import annotations

import numpy as np
import pytest

import d2lite.data.transforms as T


def _rect_image(h=40, w=60, box=(10, 5, 30, 25), channels=3, dtype=np.uint8):
    """An image that is 0 except for a filled rectangle box = (x0, y0, x1, y1)."""
    img = np.zeros((h, w, channels), dtype=dtype)
    x0, y0, x1, y1 = box
    img[y0:y1, x0:x1] = 200
    return img, np.array([box], dtype=np.float64)


def _pixel_bbox(img: np.ndarray) -> np.ndarray:
    mask = img.reshape(img.shape[0], img.shape[1], -1).max(axis=2) > 100
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float64)


def test_flips_and_inverse():
    img, box = _rect_image()
    h = T.HFlipTransform(60)
    assert np.array_equal(h.apply_box(box.copy()), [[30, 5, 50, 25]])
    assert np.array_equal(_pixel_bbox(h.apply_image(img)), [30, 5, 50, 25])
    v = T.VFlipTransform(40)
    assert np.array_equal(v.apply_box(box.copy()), [[10, 15, 30, 35]])
    assert np.array_equal(v.inverse().apply_image(v.apply_image(img)), img)


def test_resize_transform_uint8_float_gray():
    img, box = _rect_image()
    t = T.ResizeTransform(40, 60, 20, 90)
    out = t.apply_image(img)
    assert out.shape == (20, 90, 3) and out.dtype == np.uint8
    assert np.allclose(t.apply_box(box.copy()), [[15, 2.5, 45, 12.5]])
    fl = t.apply_image(img.astype(np.float32) / 255)
    assert fl.shape == (20, 90, 3) and fl.dtype == np.float32
    gray = t.apply_image(img[:, :, 0])
    assert gray.shape == (20, 90)
    one = t.apply_image(img[:, :, :1])
    assert one.shape == (20, 90, 1)
    two = t.apply_image(np.full((40, 60, 2), 255, np.uint8))  # no PIL mode: per-channel path
    assert two.shape == (20, 90, 2) and two.dtype == np.uint8 and (two == 255).all()
    back = t.inverse()
    assert (back.h, back.w, back.new_h, back.new_w) == (20, 90, 40, 60)
    seg = t.apply_segmentation(np.full((40, 60), 3, dtype=np.uint8))
    assert set(np.unique(seg)) == {3}
    with pytest.raises(AssertionError, match="expects an image of size"):
        t.apply_image(np.zeros((10, 10, 3), np.uint8))


def test_rotation_transform_90_degrees():
    img, box = _rect_image(h=40, w=60)
    t = T.RotationTransform(40, 60, 90)
    assert (t.bound_h, t.bound_w) == (60, 40)
    out = t.apply_image(img)
    assert out.shape == (60, 40, 3)
    # counter-clockwise: the point (x, y) goes to (y, W - x)
    assert np.allclose(t.apply_coords(np.array([[10.0, 5.0]])), [[5.0, 50.0]])
    assert np.allclose(t.apply_box(box.copy()), [[5, 30, 25, 50]])
    assert np.allclose(_pixel_bbox(out), [5, 30, 25, 50], atol=1)
    inv = t.inverse()
    restored = inv.apply_image(out)
    assert restored.shape == img.shape
    assert np.allclose(_pixel_bbox(restored), box[0], atol=1)
    assert T.RotationTransform(4, 4, 0).apply_image(img) is img
    with pytest.raises(NotImplementedError):
        T.RotationTransform(40, 60, 30, expand=False).inverse()


def test_augmentation_params_validated():
    with pytest.raises(ValueError, match="both horiz and vert"):
        T.RandomFlip(horizontal=True, vertical=True)
    with pytest.raises(ValueError, match="At least one"):
        T.RandomFlip(horizontal=False, vertical=False)
    with pytest.raises(ValueError, match="two values"):
        T.ResizeShortestEdge((1, 2, 3), sample_style="range")
    with pytest.raises(ValueError, match="sample_style"):
        T.ResizeShortestEdge(10, sample_style="bogus")
    with pytest.raises(ValueError, match="Unknown crop type"):
        T.RandomCrop("weird", (0.5, 0.5))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        T.RandomApply(T.RandomFlip(), prob=1.5)
    with pytest.raises(TypeError, match="numpy array"):
        T.AugInput([[1, 2]])
    with pytest.raises(ValueError, match="HW or HWC"):
        T.AugInput(np.zeros((2, 2, 3, 1), dtype=np.uint8))
    with pytest.raises(TypeError, match="Augmentation or a Transform"):
        T.AugmentationList([lambda x: x])
    # An explicit argument is listed even when it equals the default (Detectron2's rule).
    assert "RandomFlip(prob=0.5" in repr(T.RandomFlip(prob=0.5))


def test_resize_shortest_edge_sizes():
    img = np.zeros((30, 60, 3), np.uint8)
    t = T.ResizeShortestEdge((15,), max_size=1000, sample_style="choice").get_transform(img)
    assert (t.new_h, t.new_w) == (15, 30)
    t = T.ResizeShortestEdge(40, max_size=50).get_transform(img)
    assert (t.new_h, t.new_w) == (25, 50)
    assert isinstance(T.ResizeShortestEdge(0).get_transform(img), T.NoOpTransform)
    assert T.ResizeShortestEdge.get_output_shape(100, 50, 20, 1000) == (40, 20)
    t = T.Resize((7, 9)).get_transform(img)
    assert (t.new_h, t.new_w) == (7, 9)
    t = T.ResizeScale(1.0, 1.0, 60, 60).get_transform(img)
    assert (t.new_h, t.new_w) == (30, 60)


@pytest.mark.parametrize(
    "crop_type, size, expected",
    [
        ("relative", (0.5, 0.25), (20, 20)),
        ("absolute", (30, 500), (30, 80)),
        ("absolute_range", (10, 10), (10, 10)),
    ],
)
def test_random_crop_sizes(crop_type, size, expected):
    img = np.zeros((40, 80, 3), np.uint8)
    crop = T.RandomCrop(crop_type, size)
    t = crop.get_transform(img)
    assert (t.h, t.w) == expected
    assert 0 <= t.x0 <= 80 - t.w and 0 <= t.y0 <= 40 - t.h
    ch, cw = T.RandomCrop("relative_range", (0.5, 0.5)).get_crop_size((40, 80))
    assert 20 <= ch <= 40 and 40 <= cw <= 80


def test_photometric_augmentations():
    np.random.seed(0)
    img = np.full((8, 8, 3), 100, np.uint8)
    img[0, 0] = 0
    out, tfms = T.apply_transform_gens([T.RandomBrightness(2.0, 2.0)], img)
    assert out[1, 1, 0] == 200 and out.dtype == np.uint8
    out, _ = T.apply_transform_gens([T.RandomContrast(0.0, 0.0)], img)
    assert (out == out[0, 0]).all()  # contrast 0 -> every pixel at the mean
    out, _ = T.apply_transform_gens([T.RandomSaturation(0.0, 0.0)], img)
    assert (out[..., 0] == out[..., 1]).all()
    out, _ = T.apply_transform_gens([T.RandomLighting(0.1)], img)
    assert out.shape == img.shape
    with pytest.raises(ValueError, match="RGB"):
        T.RandomSaturation(0.5, 1.5).get_transform(img[:, :, :1])
    box = np.array([[1.0, 2.0, 3.0, 4.0]])
    assert np.array_equal(tfms.apply_box(box.copy()), box)


def test_random_apply_and_augmentation_list():
    np.random.seed(1)
    img, box = _rect_image()
    never = T.RandomApply(T.HFlipTransform(60), prob=0.0)
    always = T.RandomApply(T.RandomFlip(prob=1.0), prob=1.0)
    aug_input = T.AugInput(img, boxes=box.copy())
    tfms = aug_input.apply_augmentations([never, always, T.NoOpTransform()])
    assert isinstance(tfms, T.TransformList)
    assert np.array_equal(aug_input.boxes, [[30, 5, 50, 25]])
    assert np.array_equal(_pixel_bbox(aug_input.image), [30, 5, 50, 25])
    assert isinstance(never.get_transform(img), T.NoOpTransform)
    assert isinstance(always.get_transform(img), T.HFlipTransform)
    same, returned = T.apply_augmentations([T.NoOpTransform()], aug_input)
    assert same is aug_input and len(returned.transforms) == 1


def test_random_rotation_choice_and_noop():
    img = np.zeros((20, 30, 3), np.uint8)
    t = T.RandomRotation([90], sample_style="choice").get_transform(img)
    assert isinstance(t, T.RotationTransform) and t.angle == 90
    assert isinstance(T.RandomRotation(0).get_transform(img), T.NoOpTransform)
    t = T.RandomRotation((10, 20), expand=False, center=((0.4, 0.4), (0.6, 0.6))).get_transform(img)
    assert 10 <= t.angle <= 20 and 12 <= t.center[0] <= 18


def _random_chain(rng: np.random.RandomState) -> list:
    choices = [
        lambda: T.RandomFlip(prob=1.0),
        lambda: T.RandomFlip(prob=1.0, horizontal=False, vertical=True),
        lambda: T.ResizeShortestEdge((20, 70), max_size=120),
        lambda: T.RandomCrop("absolute", (rng.randint(45, 60), rng.randint(45, 60))),
        lambda: T.RandomRotation((-40, 40)),
    ]
    return [choices[i]() for i in rng.randint(len(choices), size=rng.randint(1, 5))]


@pytest.mark.parametrize("seed", range(12))
def test_boxes_follow_pixels_through_random_chains(seed):
    """The transformed box must tightly bound the transformed rectangle's pixels."""
    rng = np.random.RandomState(seed)
    np.random.seed(seed)
    img, box = _rect_image(h=60, w=80, box=(25, 20, 55, 45))
    aug_input = T.AugInput(img, boxes=box.copy())
    aug_input.apply_augmentations(_random_chain(rng))
    h, w = aug_input.image.shape[:2]
    got = aug_input.boxes[0].clip(min=0)
    got = np.minimum(got, [w, h, w, h])
    expected = _pixel_bbox(aug_input.image)
    assert np.allclose(got, expected, atol=2.0), (got, expected)
