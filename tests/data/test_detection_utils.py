from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import d2lite.data.transforms as T
from d2lite.config import get_cfg
from d2lite.data import MetadataCatalog
from d2lite.data import detection_utils as utils
from d2lite.structures import Boxes, BoxMode, Instances


def _save(tmp_path, arr, name="img.png", mode=None, **kw):
    path = tmp_path / name
    img = Image.fromarray(arr)
    if mode is not None:
        img = img.convert(mode)
    img.save(path, **kw)
    return str(path)


def _rgb(h=6, w=8):
    arr = np.zeros((h, w, 3), np.uint8)
    arr[..., 0] = 200  # red
    arr[0, 0] = (10, 20, 30)
    return arr


def test_read_image_formats(tmp_path):
    path = _save(tmp_path, _rgb())
    rgb = utils.read_image(path, format="RGB")
    assert rgb.shape == (6, 8, 3) and rgb.dtype == np.uint8 and tuple(rgb[0, 0]) == (10, 20, 30)
    bgr = utils.read_image(path, format="BGR")
    assert tuple(bgr[0, 0]) == (30, 20, 10) and bgr[1, 1, 2] == 200
    assert np.array_equal(utils.read_image(path), rgb)
    gray = utils.read_image(path, format="L")
    assert gray.shape == (6, 8, 1)
    assert utils.read_image(path).flags.writeable


@pytest.mark.parametrize(
    "mode, ext", [("L", "png"), ("P", "png"), ("RGBA", "png"), ("CMYK", "jpg")]
)
def test_read_image_other_modes_become_requested_format(tmp_path, mode, ext):
    path = _save(tmp_path, _rgb(), name=f"x.{ext}", mode=mode)
    assert utils.read_image(path, format="BGR").shape == (6, 8, 3)
    assert utils.read_image(path, format="RGB").shape == (6, 8, 3)
    assert utils.read_image(path, format="L").shape == (6, 8, 1)


def test_read_image_applies_exif_orientation(tmp_path):
    img = Image.fromarray(_rgb(h=6, w=8))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "exif.jpg"
    img.save(path, exif=exif.tobytes())
    assert utils.read_image(str(path), format="RGB").shape == (8, 6, 3)


def test_read_image_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jpg"):
        utils.read_image(str(tmp_path / "nope.jpg"))
    bad = tmp_path / "corrupt.jpg"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(OSError, match="corrupt.jpg"):
        utils.read_image(str(bad))
    truncated = tmp_path / "trunc.png"
    _save(
        tmp_path, np.random.RandomState(0).randint(0, 255, (64, 64, 3), dtype=np.uint8), "full.png"
    )
    truncated.write_bytes((tmp_path / "full.png").read_bytes()[:200])
    with pytest.raises(OSError, match="trunc.png"):
        utils.read_image(str(truncated))


def test_check_image_size():
    img = np.zeros((5, 7, 3), np.uint8)
    d = {"file_name": "a.jpg"}
    utils.check_image_size(d, img)
    assert (d["height"], d["width"]) == (5, 7)
    utils.check_image_size({"file_name": "a.jpg", "height": 5, "width": 7}, img)
    with pytest.raises(ValueError, match=r"b\.jpg.*\(7, 5\).*\(9, 5\)"):
        utils.check_image_size({"file_name": "b.jpg", "height": 5, "width": 9}, img)
    with pytest.raises(utils.SizeMismatchError):
        utils.check_image_size({"height": 4}, img)


def test_transform_instance_annotations_flip_and_clip():
    anno = {
        "bbox": [5, 2, 10, 10],
        "bbox_mode": BoxMode.XYWH_ABS,
        "category_id": 1,
        "segmentation": [[0, 0]],
    }
    out = utils.transform_instance_annotations(anno, [T.VFlipTransform(30)], (30, 40))
    assert out["bbox_mode"] == BoxMode.XYXY_ABS
    assert np.allclose(out["bbox"], [5, 18, 15, 28])
    # Polygons are transformed with the box (Detectron2's behaviour); an RLE mask, which
    # d2lite cannot transform, is still removed.
    assert np.allclose(out["segmentation"][0], [0, 30])
    rle = {"bbox": [5, 2, 10, 10], "bbox_mode": BoxMode.XYWH_ABS, "segmentation": {"counts": ""}}
    out = utils.transform_instance_annotations(rle, [T.VFlipTransform(30)], (30, 40))
    assert "segmentation" not in out
    shifted = {"bbox": [-5, -5, 10, 50], "bbox_mode": BoxMode.XYXY_ABS, "category_id": 0}
    out = utils.transform_instance_annotations(shifted, T.TransformList([]), (30, 40))
    assert np.allclose(out["bbox"], [0, 0, 10, 30])


def test_annotations_to_instances_and_empty():
    annos = [
        {"bbox": np.array([1.0, 2.0, 3.0, 4.0]), "bbox_mode": BoxMode.XYXY_ABS, "category_id": 2},
        {"bbox": [1, 1, 2, 2], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0},
    ]
    inst = utils.annotations_to_instances(annos, (10, 12))
    assert inst.image_size == (10, 12)
    assert torch.allclose(inst.gt_boxes.tensor, torch.tensor([[1.0, 2, 3, 4], [1, 1, 3, 3]]))
    assert inst.gt_classes.dtype == torch.int64 and inst.gt_classes.tolist() == [2, 0]
    empty = utils.annotations_to_instances([], (10, 12))
    assert empty.gt_boxes.tensor.shape == (0, 4) and empty.gt_classes.shape == (0,)


def test_filter_empty_instances():
    inst = Instances((10, 10))
    inst.gt_boxes = Boxes(torch.tensor([[0.0, 0, 5, 5], [2, 2, 2, 8], [1, 1, 4, 1.000001]]))
    inst.gt_classes = torch.tensor([0, 1, 2])
    kept, mask = utils.filter_empty_instances(inst, return_mask=True)
    assert kept.gt_classes.tolist() == [0] and mask.tolist() == [True, False, False]
    assert len(utils.filter_empty_instances(inst, by_box=False)) == 3
    empty = utils.annotations_to_instances([], (4, 4))
    assert len(utils.filter_empty_instances(empty)) == 0


def test_build_augmentation():
    cfg = get_cfg()
    cfg.INPUT.MIN_SIZE_TRAIN = (64, 80)
    cfg.INPUT.MIN_SIZE_TRAIN_SAMPLING = "range"
    train = utils.build_augmentation(cfg, True)
    assert isinstance(train[0], T.ResizeShortestEdge) and train[0].is_range
    assert isinstance(train[1], T.RandomFlip) and train[1].horizontal
    test = utils.build_augmentation(cfg, False)
    assert len(test) == 1 and test[0].short_edge_length == (800, 800)
    cfg.INPUT.RANDOM_FLIP = "vertical"
    assert utils.build_transform_gen(cfg, True)[1].vertical
    cfg.INPUT.RANDOM_FLIP = "none"
    assert len(utils.build_augmentation(cfg, True)) == 1
    cfg.INPUT.RANDOM_FLIP = "diagonal"
    with pytest.raises(ValueError, match="INPUT.RANDOM_FLIP.*diagonal"):
        utils.build_augmentation(cfg, True)


@pytest.mark.usefixtures("clean_catalogs")
def test_check_metadata_consistency():
    MetadataCatalog.get("du_a").thing_classes = ["x", "y"]
    MetadataCatalog.get("du_b").thing_classes = ["x", "y"]
    MetadataCatalog.get("du_c").thing_classes = ["y", "x"]
    utils.check_metadata_consistency("thing_classes", ["du_a", "du_b"])
    utils.check_metadata_consistency("thing_classes", [])
    with pytest.raises(ValueError, match="thing_classes.*du_a.*du_c"):
        utils.check_metadata_consistency("thing_classes", ["du_a", "du_c"])
    with pytest.raises(AttributeError, match="thing_classes"):
        utils.check_metadata_consistency("thing_classes", ["du_a", "du_none"])


def test_transform_keypoints_marks_outside_points_unlabelled():
    kps = [[5.0, 5.0, 2], [35.0, 5.0, 2], [8.0, 9.0, 0]]
    crop = T.TransformList([T.CropTransform(0, 0, 20, 20)])
    out = utils.transform_keypoint_annotations(kps, crop, (20, 20))
    assert out.shape == (3, 3)
    assert out[0].tolist() == [5, 5, 2]
    assert out[1].tolist() == [0, 0, 0]  # left the 20x20 crop
    assert out[2].tolist() == [0, 0, 0]  # unlabelled points are zeroed (COCO convention)


def test_transform_keypoints_swap_sides_on_horizontal_flip():
    kps = np.array([[1.0, 2, 2], [3, 4, 2], [5, 6, 1]])  # left eye, right eye, nose
    flip = T.TransformList([T.HFlipTransform(10)])
    out = utils.transform_keypoint_annotations(kps.copy(), flip, (10, 10), [1, 0, 2])
    assert out.tolist() == [[7, 4, 2], [9, 2, 2], [5, 6, 1]]
    double = T.TransformList([T.HFlipTransform(10), T.HFlipTransform(10)])
    assert np.allclose(utils.transform_keypoint_annotations(kps.copy(), double, (10, 10)), kps)
    with pytest.raises(ValueError, match="keypoint_hflip_indices"):
        utils.transform_keypoint_annotations(kps.copy(), flip, (10, 10))
    with pytest.raises(ValueError, match="3 keypoints"):
        utils.transform_keypoint_annotations(kps.copy(), flip, (10, 10), [1, 0])


def test_transform_instance_annotations_moves_polygons_and_keypoints():
    anno = {
        "bbox": [2, 2, 6, 6],
        "bbox_mode": BoxMode.XYXY_ABS,
        "segmentation": [[2, 2, 6, 2, 6, 6]],
        "keypoints": [3, 3, 2],
    }
    out = utils.transform_instance_annotations(
        anno, [T.HFlipTransform(10)], (10, 10), keypoint_hflip_indices=[0]
    )
    assert np.allclose(out["bbox"], [4, 2, 8, 6])
    assert np.allclose(out["segmentation"][0], [8, 2, 4, 2, 4, 6])
    assert out["keypoints"].tolist() == [[7, 3, 2]]
    with pytest.raises(ValueError, match="segmentation of type str"):
        utils.transform_instance_annotations(
            {"bbox": [0, 0, 1, 1], "bbox_mode": BoxMode.XYXY_ABS, "segmentation": "x"}, [], (4, 4)
        )


def test_annotations_to_instances_keeps_boxes_only_and_rotated_is_out_of_scope():
    anno = {
        "bbox": [1, 1, 3, 3],
        "bbox_mode": BoxMode.XYXY_ABS,
        "category_id": 1,
        "segmentation": [[1, 1, 3, 1, 3, 3]],
    }
    inst = utils.annotations_to_instances([anno], (5, 5), mask_format="bitmask")
    assert set(inst.get_fields()) == {"gt_boxes", "gt_classes"}
    with pytest.raises(NotImplementedError, match="rotated boxes"):
        utils.annotations_to_instances_rotated([anno], (5, 5))
    xywh = {"bbox": [1, 2, 3, 4], "bbox_mode": BoxMode.XYWH_ABS}
    assert np.allclose(utils.get_bbox(xywh), [1, 2, 4, 6])


def test_transform_proposals_clips_filters_and_keeps_topk():
    d = {
        "proposal_boxes": np.array([[0.0, 0, 4, 4], [2, 2, 30, 30], [5, 5, 5, 9], [1, 1, 2, 2]]),
        "proposal_objectness_logits": np.array([0.9, 0.8, 0.7, 0.1]),
        "proposal_bbox_mode": BoxMode.XYXY_ABS,
    }
    resize = T.TransformList([T.ScaleTransform(10, 10, 20, 20)])  # h, w 10x10 -> 20x20
    utils.transform_proposals(d, (20, 20), resize, proposal_topk=2)
    assert set(d) == {"proposals"}
    p = d["proposals"]
    assert p.image_size == (20, 20)
    assert p.proposal_boxes.tensor.tolist() == [[0, 0, 8, 8], [4, 4, 20, 20]]  # clipped
    assert torch.allclose(p.objectness_logits, torch.tensor([0.9, 0.8]))
    untouched = {"file_name": "x"}
    utils.transform_proposals(untouched, (20, 20), resize, proposal_topk=2)
    assert untouched == {"file_name": "x"}


def test_gen_crop_transform_with_instance_contains_the_center():
    np.random.seed(0)
    instance = {"bbox": [40, 10, 20, 20], "bbox_mode": BoxMode.XYWH_ABS}  # center (50, 20)
    for _ in range(20):
        t = utils.gen_crop_transform_with_instance((16, 24), (32, 64), instance)
        assert isinstance(t, T.CropTransform) and (t.h, t.w) == (16, 24)
        assert t.x0 <= 50 <= t.x0 + t.w and t.y0 <= 20 <= t.y0 + t.h
        assert t.x0 + t.w <= 64 and t.y0 + t.h <= 32
    with pytest.raises(AssertionError, match="larger than image"):
        utils.gen_crop_transform_with_instance((40, 24), (32, 64), instance)
    with pytest.raises(AssertionError, match="outside of the image"):
        utils.gen_crop_transform_with_instance((16, 24), (10, 64), instance)


@pytest.mark.usefixtures("clean_catalogs")
def test_keypoint_flip_indices_and_fed_loss_weights_from_metadata():
    MetadataCatalog.get("du_kp").set(
        keypoint_names=["nose", "left_eye", "right_eye"],
        keypoint_flip_map=[("left_eye", "right_eye")],
        class_image_count=[{"id": 2, "image_count": 9}, {"id": 1, "image_count": 4}],
    )
    assert utils.create_keypoint_hflip_indices("du_kp") == [0, 2, 1]
    weights = utils.get_fed_loss_cls_weights(["du_kp"], freq_weight_power=0.5)
    assert torch.allclose(weights, torch.tensor([2.0, 3.0]))
    with pytest.raises(AttributeError, match="keypoint_names"):
        utils.create_keypoint_hflip_indices(["du_kp", "du_no_kp"])
