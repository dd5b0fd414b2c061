"""The augmentations added for Detectron2 parity: RandomResize, FixedSizeCrop, RandomExtent,
the constrained crops, and the draw order the course mapper relies on."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

import d2lite.data.transforms as T
from d2lite.structures import Boxes, pairwise_iou


# Every public name of detectron2.data.transforms (Detectron2 v0.6).
_DETECTRON2_NAMES = """
AugInput Augmentation AugmentationList BlendTransform ColorTransform CropTransform
ExtentTransform FixedSizeCrop GridSampleTransform HFlipTransform MinIoURandomCrop NoOpTransform
PILColorTransform PadTransform RandomApply RandomBrightness RandomContrast RandomCrop
RandomCrop_CategoryAreaConstraint RandomExtent RandomFlip RandomLighting RandomResize
RandomRotation RandomSaturation Resize ResizeScale ResizeShortestEdge ResizeTransform
RotationTransform ScaleTransform StandardAugInput Transform TransformGen TransformList
VFlipTransform apply_augmentations apply_transform_gens
""".split()


def test_every_detectron2_transforms_name_imports():
    assert sorted(T.__all__) == sorted(_DETECTRON2_NAMES)
    assert all(hasattr(T, n) for n in ("augmentation", "augmentation_impl", "transform"))
    from d2lite.data.transforms.augmentation_impl import FixedSizeCrop, MinIoURandomCrop

    assert FixedSizeCrop is T.FixedSizeCrop and MinIoURandomCrop is T.MinIoURandomCrop


def test_random_resize_picks_from_the_list():
    img = np.zeros((10, 12, 3), np.uint8)
    shapes = [(4, 5), (6, 7), (8, 9)]
    aug = T.RandomResize(shapes)
    np.random.seed(0)
    seen = {(t.new_h, t.new_w) for t in (aug.get_transform(img) for _ in range(40))}
    assert seen == set(shapes)
    t = T.RandomResize([(3, 2)], interp=Image.NEAREST).get_transform(img)
    assert (t.h, t.w, t.new_h, t.new_w, t.interp) == (10, 12, 3, 2, Image.NEAREST)


def test_fixed_size_crop_crops_larger_images():
    np.random.seed(3)
    img = np.random.randint(0, 255, (50, 70, 3)).astype(np.uint8)
    aug_input = T.AugInput(img, boxes=np.array([[30.0, 20.0, 40.0, 30.0]]))
    tfms = T.FixedSizeCrop((32, 40))(aug_input)
    crop, pad = tfms.transforms
    assert aug_input.image.shape == (32, 40, 3)
    assert (pad.x1, pad.y1) == (0, 0)
    assert np.array_equal(aug_input.image, img[crop.y0 : crop.y0 + 32, crop.x0 : crop.x0 + 40])
    assert np.allclose(aug_input.boxes, [[30 - crop.x0, 20 - crop.y0, 40 - crop.x0, 30 - crop.y0]])
    back = tfms.inverse().apply_box(aug_input.boxes.copy())
    assert np.allclose(back, [[30.0, 20.0, 40.0, 30.0]])


def test_fixed_size_crop_pads_smaller_images_right_and_bottom():
    img = np.full((10, 60, 3), 7, np.uint8)
    seg = np.ones((10, 60), np.uint8)
    aug_input = T.AugInput(img, sem_seg=seg)
    np.random.seed(0)
    T.FixedSizeCrop((20, 40), pad_value=3, seg_pad_value=200)(aug_input)
    out = aug_input.image
    assert out.shape == (20, 40, 3)
    assert (out[:10] == 7).all() and (out[10:] == 3).all()
    assert (aug_input.sem_seg[:10] == 1).all() and (aug_input.sem_seg[10:] == 200).all()
    unpadded = T.FixedSizeCrop((20, 40), pad=False).get_transform(img)
    assert unpadded.apply_image(img).shape == (10, 40, 3)


def test_resize_scale_then_fixed_size_crop_keeps_boxes_on_pixels():
    np.random.seed(7)
    img = np.zeros((90, 80, 3), np.uint8)
    img[20:40, 10:30] = 255
    aug_input = T.AugInput(img, boxes=np.array([[10.0, 20.0, 30.0, 40.0]]))
    augs = [T.ResizeScale(0.5, 2.0, 110, 100), T.FixedSizeCrop((110, 100)), T.RandomFlip()]
    tfms = aug_input.apply_augmentations(augs)
    assert aug_input.image.shape == (110, 100, 3)
    resize, crop = tfms.transforms[0], tfms.transforms[1]
    scale_x, scale_y = resize.new_w / 80, resize.new_h / 90
    expected = np.array([10 * scale_x, 20 * scale_y, 30 * scale_x, 40 * scale_y])
    expected -= [crop.x0, crop.y0, crop.x0, crop.y0]
    if isinstance(tfms.transforms[-1], T.HFlipTransform):
        expected = np.array([100 - expected[2], expected[1], 100 - expected[0], expected[3]])
    assert np.allclose(aug_input.boxes[0], expected)


def test_random_extent_identity_and_zoom_out():
    img = np.full((10, 20, 3), 50, np.uint8)
    t = T.RandomExtent(scale_range=(1.0, 1.0), shift_range=(0.0, 0.0)).get_transform(img)
    assert np.allclose(t.src_rect, (0, 0, 20, 10)) and t.output_size == (10, 20)
    assert np.array_equal(t.apply_image(img), img)
    big = T.RandomExtent(scale_range=(2.0, 2.0), shift_range=(0.0, 0.0)).get_transform(img)
    out = big.apply_image(img)
    assert out.shape == (20, 40, 3) and (out[0, 0] == 0).all() and (out[10, 20] == 50).all()
    np.random.seed(0)
    shifted = T.RandomExtent((1.0, 1.0), (0.5, 0.5)).get_transform(img)
    x0, y0 = shifted.src_rect[:2]
    assert abs(x0) <= 0.5 * 20 / 2 and abs(y0) <= 0.5 * 10 / 2


def _dominated_labels() -> np.ndarray:
    seg = np.zeros((40, 40), np.uint8)  # category 0 everywhere ...
    seg[:, 30:] = 1  # ... except a strip of category 1 on the right
    return seg


def test_category_area_crop_avoids_windows_of_one_category():
    seg = _dominated_labels()
    img = np.zeros((40, 40, 3), np.uint8)
    aug = T.RandomCrop_CategoryAreaConstraint("absolute", (20, 20), single_category_max_area=0.9)
    for seed in range(5):
        np.random.seed(seed)
        aug_input = T.AugInput(img, sem_seg=seg)
        crop = aug(aug_input)
        window = aug_input.sem_seg
        assert window.shape == (20, 20) and isinstance(crop, T.CropTransform)
        counts = np.bincount(window.ravel(), minlength=2)
        assert counts.min() > 0 and counts.max() < 0.9 * window.size
    assert aug.input_args == ("image", "sem_seg")


def test_category_area_crop_off_and_ignored_category():
    seg = _dominated_labels()
    img = np.zeros((40, 40), np.uint8)
    np.random.seed(0)
    off = T.RandomCrop_CategoryAreaConstraint("absolute", (20, 20))
    assert isinstance(off.get_transform(img, None), T.CropTransform)  # no label map needed
    ignore = T.RandomCrop_CategoryAreaConstraint(
        "absolute", (20, 20), single_category_max_area=0.5, ignored_category=0
    )
    # Category 0 is exempt, leaving at most one category: no window passes, the 10th is kept.
    np.random.seed(4)
    crop = ignore.get_transform(img, seg)
    np.random.seed(4)
    for _ in range(10):
        y0, x0 = np.random.randint(40 - 20 + 1), np.random.randint(40 - 20 + 1)
    assert (crop.x0, crop.y0, crop.w, crop.h) == (x0, y0, 20, 20)


def _min_iou_checked(crop: T.CropTransform, boxes: np.ndarray) -> float:
    """The smallest IoU of the window that was checked: as in Detectron2, its far edges are
    int(left + new_w), which can be one pixel past the crop's int(left) + int(new_w)."""
    best = 0.0
    for dx in (0, 1):
        for dy in (0, 1):
            x1, y1 = crop.x0 + crop.w + dx, crop.y0 + crop.h + dy
            patch = Boxes(torch.tensor([[crop.x0, crop.y0, x1, y1]], dtype=torch.float32))
            best = max(best, float(pairwise_iou(patch, Boxes(boxes)).min()))
    return best


def test_min_iou_random_crop_meets_its_threshold():
    img = np.zeros((60, 80, 3), np.uint8)
    boxes = np.array([[10.0, 10.0, 40.0, 40.0], [45.0, 20.0, 70.0, 50.0]])
    aug = T.MinIoURandomCrop(min_ious=(0.1, 0.3), min_crop_size=0.3)
    kinds = set()
    for seed in range(30):
        np.random.seed(seed)
        t = aug.get_transform(img, boxes)
        kinds.add(type(t))
        if isinstance(t, T.NoOpTransform):
            assert aug.mode == 1
            continue
        assert 0 <= t.x0 and t.x0 + t.w <= 80 and 0 <= t.y0 and t.y0 + t.h <= 60
        assert _min_iou_checked(t, boxes) >= aug.mode
        centers = (boxes[:, :2] + boxes[:, 2:]) / 2
        inside = (centers > [t.x0, t.y0]).all(1) & (centers < [t.x0 + t.w, t.y0 + t.h]).all(1)
        assert inside.any()
    assert kinds == {T.CropTransform, T.NoOpTransform}


def test_min_iou_random_crop_without_boxes():
    img = np.zeros((30, 30), np.uint8)  # HW images work too
    aug = T.MinIoURandomCrop(min_ious=(0.5,))
    assert isinstance(aug.get_transform(img, None), T.NoOpTransform)
    np.random.seed(1)
    outs = [aug.get_transform(img, np.zeros((0, 4))) for _ in range(10)]
    assert any(isinstance(t, T.CropTransform) for t in outs)  # empty GT: any crop goes
    aug_input = T.AugInput(np.zeros((30, 30, 3), np.uint8), boxes=np.zeros((0, 4)))
    aug(aug_input)
    assert aug.input_args == ("image", "boxes")


def test_trash_course_augmentations_draw_in_detectron2_order():
    """The course mapper's three augmentations: one uniform draw each, in list order."""
    img = np.random.RandomState(5).randint(0, 256, (12, 9, 3)).astype(np.uint8)
    augs = [
        T.RandomFlip(prob=0.5, horizontal=False, vertical=True),
        T.RandomBrightness(0.8, 1.8),
        T.RandomContrast(0.6, 1.3),
    ]
    for seed in range(4):
        np.random.seed(seed)
        out, tfms = T.apply_transform_gens(augs, img)
        np.random.seed(seed)
        flip = np.random.uniform(0, 1) < 0.5
        brightness = np.random.uniform(0.8, 1.8)
        contrast = np.random.uniform(0.6, 1.3)
        expected = img[::-1] if flip else img
        expected = np.clip(brightness * expected.astype(np.float32), 0, 255).astype(np.uint8)
        mean = expected.mean()
        expected = expected.astype(np.float32) * contrast + (1 - contrast) * mean
        assert np.array_equal(out, np.clip(expected, 0, 255).astype(np.uint8))
        assert isinstance(tfms[0], T.VFlipTransform if flip else T.NoOpTransform)
