"""Tests for the PIL-based Visualizer."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from d2lite.structures import Boxes, BoxMode, Instances
from d2lite.utils import visualizer as visualizer_module
from d2lite.utils.visualizer import (
    ColorMode,
    VisImage,
    Visualizer,
    _create_text_labels,
    _overlap,
    draw_ground_truth_and_predictions,
)


class _Meta:
    thing_classes = ["cat", "dog", "bird"]


def _img(h=60, w=80, value=128):
    return np.full((h, w, 3), value, dtype=np.uint8)


def _preds(boxes, scores, classes, size=(60, 80)):
    inst = Instances(size)
    inst.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
    inst.scores = torch.tensor(scores, dtype=torch.float32)
    inst.pred_classes = torch.tensor(classes, dtype=torch.int64)
    return inst


def test_predictions_shape_dtype_and_pixels_on_box_edges():
    img = _img()
    out = Visualizer(img, _Meta()).draw_instance_predictions(_preds([[20, 25, 60, 55]], [0.9], [1]))
    assert isinstance(out, VisImage)
    res = out.get_image()
    assert res.shape == (60, 80, 3) and res.dtype == np.uint8
    assert (res[40, 20] != 128).any(), "left edge of the box is drawn"
    assert (res[40, 59] != 128).any(), "right edge of the box is drawn"
    assert (res[40, 40] == 128).all(), "box interior is untouched"
    assert (res[5:8, 70:78] == 128).all(), "far corner untouched"
    assert (img == 128).all(), "input image is not modified"


def test_colours_differ_per_class_and_match_within_class():
    boxes = [[5, 20, 25, 55], [30, 20, 50, 55], [55, 20, 75, 55]]
    res = Visualizer(_img()).draw_instance_predictions(
        _preds(boxes, [0.9, 0.8, 0.7], [0, 1, 0])
    ).get_image()
    left_edges = [tuple(res[45, int(b[0])]) for b in boxes]
    assert left_edges[0] != left_edges[1]
    assert left_edges[0] == left_edges[2]


def test_zero_instances_returns_unchanged_image():
    res = Visualizer(_img()).draw_instance_predictions(_preds([], [], [])).get_image()
    assert res.shape == (60, 80, 3)
    assert (res == 128).all()


def test_labels_text_and_scores():
    assert _create_text_labels([1, 0], [0.873, 0.5], ["a", "b"]) == ["b 87%", "a 50%"]
    # A class without a name is "class 2", never a bare id next to a score ("2 84%").
    assert _create_text_labels([2], None, None) == ["class 2"]
    assert _create_text_labels([8], [0.84], None) == ["class 8: 84%"]
    assert _create_text_labels([5, 1], [0.9, 0.5], ["a", "b"]) == ["class 5: 90%", "b 50%"]
    assert _create_text_labels(None, [0.25], None) == ["25%"]
    assert _create_text_labels([0], None, ["a"], is_crowd=[True]) == ["a|crowd"]
    assert _create_text_labels(None, None, ["a"]) is None


@pytest.mark.parametrize("background", [0, 255])
def test_label_readable_on_dark_and_light_images(background):
    vis = Visualizer(_img(value=background))
    res = vis.draw_text("Paper 99%", (40, 30), color=(255, 225, 25)).get_image()
    patch = res[25:45, 20:60].reshape(-1, 3)
    colours = {tuple(p) for p in patch}
    # The label box has its own fill colour and near-black text on the yellow fill.
    assert any(p[0] > 200 and p[1] > 180 and p[2] < 80 for p in colours)
    assert any(max(p) < 60 for p in colours)


def test_dataset_dict_with_xywh_and_xyxy_modes():
    anns = [
        {"bbox": [10, 10, 20, 20], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0},
        {"bbox": [40, 30, 70, 50], "bbox_mode": BoxMode.XYXY_ABS, "category_id": 2},
    ]
    res = Visualizer(_img(), _Meta()).draw_dataset_dict({"annotations": anns}).get_image()
    assert (res[20, 10] != 128).any() and (res[20, 29] != 128).any()
    assert (res[40, 69] != 128).any() and (res[20, 20] == 128).all()
    empty = Visualizer(_img()).draw_dataset_dict({"file_name": "x.jpg"}).get_image()
    assert (empty == 128).all()


def test_scale_changes_output_size(tmp_path):
    vis = Visualizer(_img(), scale=2.0)
    out = vis.overlay_instances(boxes=np.array([[10, 10, 30, 30]]), labels=["x"])
    assert out.get_image().shape == (120, 160, 3)
    assert (out.get_image()[40, 20] != 128).any()
    path = tmp_path / "vis.png"
    out.save(str(path))
    assert Image.open(path).size == (160, 120)


def test_draw_box_colours_and_dashed_style():
    vis = Visualizer(_img(value=0))
    vis.draw_box([10, 10, 50, 40], alpha=1.0, edge_color="r")
    res = vis.draw_box([5, 45, 75, 55], alpha=1.0, edge_color=(0.0, 0.0, 1.0), line_style="--")
    res = res.get_image()
    assert tuple(res[25, 10]) == (255, 0, 0)
    row = res[45, 5:75]
    assert (row[:, 2] == 255).any() and (row[:, 2] == 0).any(), "dashed line has gaps"


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        Visualizer(np.zeros((4, 4, 2)))
    vis = Visualizer(_img())
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        vis.overlay_instances(boxes=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="2 labels for 1 boxes"):
        vis.overlay_instances(boxes=[[0, 0, 5, 5]], labels=["a", "b"])
    with pytest.raises(ValueError, match="2 masks for 1 boxes"):  # masks are drawn since #12
        vis.overlay_instances(boxes=[[0, 0, 5, 5]], masks=[np.zeros((60, 80))] * 2)
    with pytest.raises(NotImplementedError, match="keypoints"):
        vis.overlay_instances(boxes=[[0, 0, 5, 5]], keypoints=np.zeros((1, 17, 3)))
    with pytest.raises(ValueError, match="horizontal_alignment"):
        vis.draw_text("x", (1, 1), horizontal_alignment="middle")


def test_grey_input_and_bw_mode():
    res = Visualizer(np.full((20, 30), 50, np.uint8)).get_output().get_image()
    assert res.shape == (20, 30, 3)
    colour = np.zeros((20, 30, 3), np.uint8)
    colour[..., 0] = 200
    bw = Visualizer(colour, instance_mode=ColorMode.IMAGE_BW).get_output().get_image()
    assert (bw[..., 0] == bw[..., 1]).all() and (bw[..., 1] == bw[..., 2]).all()


def test_masks_in_every_detectron2_form_are_tinted():
    h, w = 60, 80
    binary = np.zeros((h, w), bool)
    binary[10:20, 10:30] = True
    polygon = [[40.0, 10.0, 70.0, 10.0, 70.0, 40.0, 40.0, 40.0]]
    from pycocotools import mask as mask_util

    rle = mask_util.encode(np.asfortranarray(binary.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode()
    for masks, inside, outside in [
        ([binary], (15, 20), (50, 50)),
        ([polygon], (25, 55), (15, 20)),
        ([rle], (15, 20), (50, 50)),
        (torch.from_numpy(binary)[None], (15, 20), (50, 50)),
    ]:
        out = Visualizer(_img(value=0)).overlay_instances(masks=masks, assigned_colors=[(255, 0, 0)])
        img = out.get_image()
        assert img[inside][0] > 100 and img[inside][1] == 0, f"mask not tinted: {type(masks)}"
        assert tuple(img[outside]) == (0, 0, 0)


def test_predictions_with_masks_and_raw_tensor_boxes_draw():
    inst = Instances((60, 80))
    inst.pred_boxes = torch.tensor([[5.0, 5.0, 40.0, 40.0]])  # a raw tensor, as some scripts set
    inst.scores = torch.tensor([0.9])
    inst.pred_classes = torch.tensor([3])
    masks = torch.zeros(1, 60, 80, dtype=torch.bool)
    masks[0, 10:30, 10:30] = True
    inst.pred_masks = masks
    img = Visualizer(_img(value=0)).draw_instance_predictions(inst).get_image()
    assert img[20, 20].max() > 0  # the mask is tinted in the class colour


def test_dataset_dict_with_polygons_draws_them():
    dic = {"annotations": [{"bbox": [40, 10, 30, 30], "category_id": 1,
                            "segmentation": [[40, 10, 70, 10, 70, 40, 40, 40]]}]}
    img = Visualizer(_img(value=0)).draw_dataset_dict(dic).get_image()
    assert img[25, 55].max() > 0


def test_random_color_comes_from_the_palette_in_either_order():
    from d2lite.utils.visualizer import random_color

    np.random.seed(0)
    rgb = random_color(rgb=True, maximum=1)
    assert rgb.shape == (3,) and 0 <= rgb.min() and rgb.max() <= 1
    np.random.seed(0)
    assert np.allclose(random_color(rgb=False, maximum=1), rgb[::-1])


def test_labels_of_overlapping_boxes_do_not_overlap():
    boxes = [[20, 25, 70, 58], [21, 26, 68, 57], [22, 25, 66, 55], [60, 40, 79, 59]]
    vis = Visualizer(_img(), _Meta())
    vis.draw_instance_predictions(_preds(boxes, [0.9, 0.8, 0.7, 0.6], [0, 1, 2, 0]))
    spots = vis._placed_labels
    assert len(spots) == 4
    for i, a in enumerate(spots):
        assert 0 <= a[0] and a[2] <= 80 and 0 <= a[1] and a[3] <= 60  # on the canvas
        for b in spots[i + 1 :]:
            assert not _overlap(a, b), (a, b)
    # The largest box keeps the usual place: just above its top-left corner.
    assert spots[0][0] == 20 and spots[0][3] == 25


def _gt_dict():
    return {"annotations": [
        {"bbox": [5, 10, 20, 20], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0},
        {"bbox": [40, 20, 30, 30], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 1},
    ]}  # fmt: skip


@pytest.fixture
def titles(monkeypatch) -> list[str]:
    """The panel titles draw_ground_truth_and_predictions writes, as it hands them over."""
    seen: list[str] = []
    real = visualizer_module._side_by_side

    def spy(panels):
        seen.extend(title for title, _ in panels)
        return real(panels)

    monkeypatch.setattr(visualizer_module, "_side_by_side", spy)
    return seen


def test_ground_truth_beside_predictions(titles):
    preds = _preds([[40, 20, 70, 50], [5, 5, 15, 15]], [0.9, 0.3], [1, 2])
    out = draw_ground_truth_and_predictions(
        _img(), preds, _gt_dict(), _Meta(), score_threshold=0.5
    ).get_image()
    assert titles == ["ground truth: 2 boxes", "predictions: 1 box, score >= 0.50"]
    strip = out.shape[0] - 60
    assert out.shape[1] == 80 + 4 + 80 and strip > 10
    left, right = out[strip:, :80], out[strip:, 84:]
    assert (left[20, 5] != 128).any() and (left[20, 30] == 128).all()  # GT box 0 on the left
    assert (right[35, 40] != 128).any()  # the 90% prediction on the right
    assert (right[10, 5] == 128).all()  # the 30% one is under the threshold
    assert (out[:strip, :60] < 100).any() and (out[:strip, 84:140] < 100).any()  # titles


def test_predictions_alone_without_ground_truth(titles):
    preds = _preds([[40, 20, 70, 50]], [0.9], [1])
    out = draw_ground_truth_and_predictions(_img(), preds, {"file_name": "x.jpg"}, scale=2.0)
    assert titles == ["predictions: 1 box"]
    assert out.get_image().shape[1] == 160 and out.get_image().shape[0] > 120
