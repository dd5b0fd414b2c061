"""The Augmentation machinery: inputs bound by argument name, repr, RandomApply, lists, errors."""

from __future__ import annotations

import logging
from unittest import mock

import numpy as np
import pytest

import d2lite.data.transforms as T
from d2lite.data.transforms import augmentation as aug_module


class _NeedsBoxes(T.Augmentation):
    """Flips when there are boxes, to show it got them from the input."""

    def get_transform(self, image, boxes):
        self.seen = (image.shape, None if boxes is None else boxes.copy())
        return T.HFlipTransform(image.shape[1]) if boxes is not None else T.NoOpTransform()


def test_get_transform_parameter_names_pick_the_inputs():
    img = np.zeros((10, 20, 3), np.uint8)
    boxes = np.array([[1.0, 2.0, 5.0, 6.0]])
    aug = _NeedsBoxes()
    assert aug.input_args is None  # read from the signature on the first call
    aug_input = T.AugInput(img, boxes=boxes.copy())
    tfm = aug(aug_input)
    assert aug.input_args == ("image", "boxes")
    assert aug.seen[0] == (10, 20, 3) and np.array_equal(aug.seen[1], boxes)
    assert isinstance(tfm, T.HFlipTransform)
    assert np.array_equal(aug_input.boxes, [[15.0, 2.0, 19.0, 6.0]])


def test_one_parameter_means_image_whatever_its_name():
    class AnyName(T.Augmentation):
        def get_transform(self, picture):
            return T.VFlipTransform(picture.shape[0])

    aug_input = T.AugInput(np.arange(6, dtype=np.float32).reshape(3, 2))
    AnyName()(aug_input)
    assert np.array_equal(aug_input.image[0], [4.0, 5.0])


def test_explicit_input_args_and_custom_input_objects():
    class SemSegOnly(T.Augmentation):
        input_args = ("sem_seg",)

        def get_transform(self, seg):
            return T.CropTransform(0, 0, 2, int(seg.max()))

    class MyInput:
        """Any object with the named attributes and a transform() method will do."""

        def __init__(self) -> None:
            self.sem_seg = np.full((4, 4), 3, np.uint8)
            self.points = np.array([[1.0, 1.0]])

        def transform(self, tfm: T.Transform) -> None:
            self.sem_seg = tfm.apply_segmentation(self.sem_seg)
            self.points = tfm.apply_coords(self.points)

    inp = MyInput()
    T.AugmentationList([SemSegOnly(), T.HFlipTransform(2)])(inp)
    assert inp.sem_seg.shape == (3, 2)
    assert np.array_equal(inp.points, [[1.0, 1.0]])  # flipped inside a width of 2


def test_missing_input_and_variadic_get_transform_are_errors():
    class NeedsDepth(T.Augmentation):
        def get_transform(self, image, depth):
            return T.NoOpTransform()

    class Variadic(T.Augmentation):
        def get_transform(self, image, *rest):
            return T.NoOpTransform()

    aug_input = T.AugInput(np.zeros((2, 2), np.float32))
    with pytest.raises(AttributeError, match="'depth'"):
        aug_input.apply_augmentations([NeedsDepth()])
    with pytest.raises(TypeError, match=r"\*args"):
        Variadic()(aug_input)


def test_aliases_are_the_same_objects():
    assert T.StandardAugInput is T.AugInput
    assert T.TransformGen is T.Augmentation
    assert T.apply_transform_gens is T.apply_augmentations


def test_repr_lists_only_arguments_that_are_not_the_default_object():
    assert str(T.RandomFlip()) == "RandomFlip()"
    assert str(T.RandomFlip(prob=0.5)) == "RandomFlip(prob=0.5)"
    assert str(T.RandomFlip(0.2, horizontal=False, vertical=True)) == (
        "RandomFlip(prob=0.2, horizontal=False, vertical=True)"
    )
    crop = T.RandomCrop("relative", (100, 100))
    assert str(crop) == "RandomCrop(crop_type='relative', crop_size=(100, 100))"
    assert repr(T.ResizeShortestEdge(100, max_size=1333)) == (
        "ResizeShortestEdge(short_edge_length=(100, 100), max_size=1333)"
    )
    assert repr(T.RandomCrop("absolute", list(range(60)))).endswith("crop_size=...)")
    flips = T.AugmentationList([T.RandomFlip(), T.HFlipTransform(4)])
    assert str(flips) == "AugmentationList[RandomFlip(), HFlipTransform(width=4)]"
    assert repr(T.RandomApply(T.RandomFlip(), prob=0.3)) == "RandomApply(RandomFlip(), prob=0.3)"


def test_repr_falls_back_when_arguments_are_not_stored():
    class Hidden(T.Augmentation):
        def __init__(self, size: int = 3) -> None:
            self._size = size

    assert repr(Hidden()).startswith("<") and "Hidden object at" in repr(Hidden())


def test_random_apply_checks_probability_and_type_as_assertions_too():
    for prob in (-0.01, 1.01):
        with pytest.raises(AssertionError, match=r"\[0, 1\]"):
            T.RandomApply(None, prob=prob)
        with pytest.raises(ValueError):
            T.RandomApply(T.NoOpTransform(), prob=prob)
    with pytest.raises(TypeError, match="Augmentation or a Transform"):
        T.RandomApply(None, prob=0.5)
    with pytest.raises(AssertionError):
        T.RandomApply(None, prob=0.5)
    for prob in (0.0, 0.5, 1.0):
        assert T.RandomApply(T.NoOpTransform(), prob=prob).prob == prob


def test_random_apply_delegates_get_transform_by_its_draw():
    inner = mock.MagicMock(spec=T.Augmentation)
    image = np.zeros((2, 2), np.float32)
    apply = T.RandomApply(inner, prob=0.25)
    with mock.patch.object(apply, "_rand_range", return_value=0.2):
        out = apply.get_transform(image)
    inner.get_transform.assert_called_once_with(image)
    assert out is inner.get_transform.return_value
    with mock.patch.object(apply, "_rand_range", return_value=0.3):
        assert isinstance(apply.get_transform(image), T.NoOpTransform)
    assert inner.get_transform.call_count == 1
    fixed = T.HFlipTransform(2)
    with mock.patch.object(T.RandomApply, "_rand_range", return_value=0.0):
        assert T.RandomApply(fixed, prob=0.01).get_transform(image) is fixed


def test_argument_checks_raise_both_their_python_type_and_assertion_error():
    cases = [
        lambda: T.ResizeShortestEdge(10, sample_style="bogus"),
        lambda: T.ResizeShortestEdge((1, 2, 3)),
        lambda: T.RandomRotation(10, sample_style="bogus"),
        lambda: T.RandomCrop("weird", (1, 1)),
        lambda: T.RandomCrop("absolute_range", (5, 2)).get_crop_size((10, 10)),
        lambda: T.RandomSaturation(0.5, 1.5).get_transform(np.zeros((4, 4, 1))),
        lambda: T.RandomLighting(0.1).get_transform(np.zeros((4, 4))),
        lambda: T.AugInput(np.zeros((1, 2, 3, 4), np.uint8)),
    ]
    for make in cases:
        with pytest.raises(ValueError) as info:
            make()
        assert isinstance(info.value, AssertionError)
    with pytest.raises(AssertionError):
        T.AugInput("not an array")
    with pytest.raises(TypeError):
        T.AugmentationList([object()])


def test_non_uint8_integer_images_warn_once_and_still_work(caplog, monkeypatch):
    monkeypatch.setattr(aug_module, "_warned_dtypes", set())
    img = np.arange(12, dtype=np.int32).reshape(3, 4)
    with caplog.at_level(logging.WARNING, logger=aug_module.__name__):
        out, _ = T.apply_augmentations([T.HFlipTransform(4)], img)
        T.AugInput(img)
    warnings = [r for r in caplog.records if "uint8" in r.getMessage()]
    assert len(warnings) == 1 and "int32" in warnings[0].getMessage()
    assert out.dtype == np.int32 and np.array_equal(out[0], [3, 2, 1, 0])


def test_nested_augmentation_lists_give_one_flat_transform_list():
    aug_input = T.AugInput(np.zeros((40, 40, 3), np.uint8))
    inner = T.AugmentationList([T.RandomFlip(prob=1.0), T.Resize(20)])
    tfms = T.AugmentationList([inner, T.Resize(30)])(aug_input)
    assert [type(t) for t in tfms.transforms] == [
        T.HFlipTransform,
        T.ResizeTransform,
        T.ResizeTransform,
    ]
    assert aug_input.image.shape == (30, 30, 3)
    with pytest.raises(NotImplementedError):  # each step needs the previous one's output
        inner.get_transform(aug_input.image)


def test_transform_lists_compose_invert_and_take_registered_types():
    flip, crop = T.HFlipTransform(10), T.CropTransform(2, 0, 6, 4, orig_w=10, orig_h=4)
    tfms = T.TransformList([flip]) + crop
    assert len(tfms) == 2 and tfms[1] is crop
    both = crop + T.TransformList([flip])
    assert [type(t) for t in both.transforms] == [T.CropTransform, T.HFlipTransform]
    point = np.array([[3.0, 1.0]])
    moved = tfms.apply_coords(point.copy())
    assert np.allclose(moved, [[5.0, 1.0]])  # flip: 10 - 3 = 7, crop: 7 - 2
    assert np.allclose(tfms.inverse().apply_coords(moved.copy()), point)

    class Shift(T.Transform):
        def __init__(self, dx: float) -> None:
            super().__init__()
            self._set_attributes(locals())

        def apply_image(self, img):
            return img

        def apply_coords(self, coords):
            return coords + self.dx

    @Shift.register_type("offsets")
    def _shift_offsets(tfm, offsets):
        return [o + tfm.dx for o in offsets]

    assert T.TransformList([Shift(1.0), Shift(2.5)]).apply_offsets([0.0, 1.0]) == [3.5, 4.5]
