"""Tests for the dataset checker (d2lite.extras.check_dataset) and tools/check_dataset.py."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from d2lite.data import DatasetCatalog, MetadataCatalog
from d2lite.data.datasets import register_coco_instances
from d2lite.extras.check_dataset import check_coco_dict, check_coco_json, check_dataset_dicts
from d2lite.data.detection_utils import SizeMismatchError, check_image_size, read_image
from d2lite.structures import BoxMode


def _dataset(root: Path) -> dict:
    """Two 40x30 images, two categories, three good boxes (one small, one medium, one large)."""
    (root / "imgs").mkdir(parents=True, exist_ok=True)
    for name in ("a.jpg", "b.jpg"):
        Image.new("RGB", (40, 30)).save(root / "imgs" / name)
    return {
        "images": [
            {"id": 0, "file_name": "imgs/a.jpg", "width": 40, "height": 30},
            {"id": 1, "file_name": "imgs/b.jpg", "width": 40, "height": 30},
        ],
        "categories": [{"id": 0, "name": "Paper"}, {"id": 1, "name": "Glass"}],
        "annotations": [
            {"id": 0, "image_id": 0, "category_id": 0, "bbox": [1, 1, 5, 5], "iscrowd": 0},
            {"id": 1, "image_id": 0, "category_id": 1, "bbox": [0, 0, 40, 30], "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [2, 2, 8.5, 8], "iscrowd": 0},
        ],
    }


def test_clean_dataset_passes_with_stats(tmp_path):
    report = check_coco_dict(_dataset(tmp_path), str(tmp_path))
    assert report.ok, report.format()
    assert not any(report.warnings.values())
    assert report.class_counts == {"  0 Paper": 1, "  1 Glass": 2}
    text = report.format()
    assert "0-based contiguous" in text
    assert "small 2, medium 1, large 0" in text
    assert "Result: OK (0 errors, 0 warnings)" in text


def test_dangling_duplicate_and_bad_boxes_are_errors(tmp_path):
    data = _dataset(tmp_path)
    data["annotations"] += [
        {"id": 3, "image_id": 7, "category_id": 0, "bbox": [1, 1, 2, 2]},
        {"id": 4, "image_id": 0, "category_id": 5, "bbox": [1, 1, 2, 2]},
        {"id": 5, "image_id": 0, "category_id": 0, "bbox": [1, 1, 0, 2]},
        {"id": 5, "image_id": 1, "category_id": 0, "bbox": [30, 20, 20, 20]},
    ]
    report = check_coco_dict(data, str(tmp_path))
    assert not report.ok
    assert report.errors["dangling_image_id"] == ["annotation 3 -> image 7 not in images"]
    assert report.errors["unknown_category_id"] == ["annotation 4 -> category 5 not in categories"]
    assert "annotation 5" in report.errors["non_positive_box"][0]
    assert report.errors["duplicate_annotation_id"] == ["annotation id 5 appears 2 times"]
    assert "leaves the 40x30 image" in report.warnings["box_outside_image"][0]
    assert "FAILED" in report.format()


def test_schema_errors_name_the_entry(tmp_path):
    data = _dataset(tmp_path)
    data["images"][1]["width"] = "40"
    data["annotations"][0]["bbox"] = [1, 2, 3]
    del data["categories"]
    report = check_coco_dict(data, None)
    assert "missing top-level keys ['categories']" in report.errors["schema"][0]
    assert "images[1] (id 1)" in report.errors["images_schema"][0]
    assert "annotations[0] (id 0)" in report.errors["annotations_schema"][0]
    top_level = check_coco_dict([1, 2], None).errors["schema"]
    assert top_level == ["top level must be an object, got list"]


def test_missing_unreadable_and_wrong_size_images(tmp_path):
    data = _dataset(tmp_path)
    data["images"].append({"id": 2, "file_name": "imgs/gone.jpg", "width": 4, "height": 4})
    (tmp_path / "imgs" / "bad.jpg").write_bytes(b"not a jpeg")
    data["images"].append({"id": 3, "file_name": "imgs/bad.jpg", "width": 4, "height": 4})
    data["images"][1]["height"] = 31
    report = check_coco_dict(data, str(tmp_path))
    assert "image 2" in report.errors["missing_image"][0]
    assert "image 3" in report.errors["unreadable_image"][0]
    assert "is 40x30, annotated 40x31" in report.errors["image_size_mismatch"][0]
    assert report.warnings["image_without_annotations"] == ["image 2", "image 3"]
    unchecked = check_coco_dict(data, str(tmp_path), check_images=False)
    assert not unchecked.errors.get("missing_image")


@pytest.mark.parametrize(
    "ids, scheme", [([1, 2], "1-based contiguous"), ([3, 9], "sparse, 3..9")]
)
def test_category_id_scheme_is_reported(tmp_path, ids, scheme):
    data = _dataset(tmp_path)
    for cat, new in zip(data["categories"], ids):
        cat["id"] = new
    for ann in data["annotations"]:
        ann["category_id"] = ids[ann["category_id"]]
    report = check_coco_dict(data, None)
    assert report.ok and any(scheme in line for line in report.info)


def test_listing_is_capped(tmp_path):
    data = _dataset(tmp_path)
    data["images"] += [
        {"id": 10 + i, "file_name": f"x{i}.jpg", "width": 4, "height": 4} for i in range(25)
    ]
    text = check_coco_dict(data, None).format(max_per_kind=20)
    assert "image_without_annotations (25):" in text and "... and 5 more" in text


def test_json_file_errors_and_dataset_dicts(tmp_path):
    (tmp_path / "broken.json").write_text("{")
    assert "cannot read" in check_coco_json(str(tmp_path / "broken.json"), None).errors["json"][0]
    dicts = [
        {
            "file_name": str(tmp_path / "missing.jpg"), "image_id": 4, "height": 30, "width": 40,
            "annotations": [
                {"bbox": [1, 1, 10, 10], "bbox_mode": BoxMode.XYXY_ABS, "category_id": 0},
                {"bbox": [1, 1, 10, 10], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 3},
            ],
        }
    ]  # fmt: skip
    report = check_dataset_dicts(dicts, ["a", "b"])
    unknown = report.errors["unknown_category_id"]
    assert unknown == ["image 4 annotation #1 -> category 3 not in categories"]
    assert "missing.jpg" in report.errors["missing_image"][0]
    assert report.class_counts["  0 a"] == 1


def test_command_line_exit_codes(tmp_path, capsys, load_tool):
    tool = load_tool("check_dataset")
    good = _dataset(tmp_path)
    (tmp_path / "good.json").write_text(json.dumps(good))
    assert tool.main([str(tmp_path / "good.json"), str(tmp_path)]) == 0
    assert "Result: OK" in capsys.readouterr().out
    bad = copy.deepcopy(good)
    bad["annotations"][0]["image_id"] = 99
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    assert tool.main([str(tmp_path / "bad.json"), str(tmp_path)]) == 1
    assert "dangling_image_id (1)" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        tool.main([str(tmp_path / "good.json")])


def test_command_line_registered_dataset(trash_dir, capsys, load_tool):
    tool = load_tool("check_dataset")
    assert tool.main(["--dataset", "tools_trash_train"]) == 0
    out = capsys.readouterr().out
    assert "Dataset: tools_trash_train (registered)" in out and "Images: 6" in out
    assert "9 Clothing" in out


def _exif_rotated_jpeg(path: Path, orientation: int) -> None:
    """A 40x30 (stored) JPEG whose EXIF says to rotate it: upright, it is 30x40."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.new("RGB", (40, 30), (90, 20, 20)).save(path, exif=exif.tobytes())


def _one_image(file_name: str, width: int, height: int) -> dict:
    return {
        "images": [{"id": 7, "file_name": file_name, "width": width, "height": height}],
        "categories": [{"id": 0, "name": "Paper"}],
        "annotations": [{"id": 0, "image_id": 7, "category_id": 0, "bbox": [1, 1, 5, 5]}],
    }


def test_truncated_jpeg_is_an_error_as_in_the_loader(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (30, 40, 3), np.uint8)).save(tmp_path / "full.jpg")
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])  # its header (size) still reads
    with pytest.raises(OSError, match="cut.jpg"):
        read_image(str(tmp_path / "cut.jpg"))
    report = check_coco_dict(_one_image("cut.jpg", 40, 30), str(tmp_path))
    assert not report.ok
    assert "image 7" in report.errors["unreadable_image"][0]
    assert "truncated" in report.errors["unreadable_image"][0]


@pytest.mark.parametrize("orientation", [6, 8])
def test_exif_rotated_image_is_checked_upright_as_the_loader_sees_it(tmp_path, orientation):
    _exif_rotated_jpeg(tmp_path / "r.jpg", orientation)
    loaded = read_image(str(tmp_path / "r.jpg"))
    assert loaded.shape[:2] == (40, 30)
    upright = check_coco_dict(_one_image("r.jpg", 30, 40), str(tmp_path))
    assert upright.ok, upright.format()
    stored = check_coco_dict(_one_image("r.jpg", 40, 30), str(tmp_path))
    # The loader rejects the stored size too, so the checker must.
    with pytest.raises(SizeMismatchError):
        check_image_size({"file_name": "r.jpg", "width": 40, "height": 30}, loaded)
    message = stored.errors["image_size_mismatch"][0]
    assert "image 7" in message and "is 30x40" in message and "annotated 40x30" in message
    assert "EXIF" in message


def test_non_finite_boxes_are_errors_naming_the_annotation(tmp_path):
    data = _dataset(tmp_path)
    data["annotations"][0]["bbox"] = [1, float("nan"), 5, 5]
    data["annotations"][2]["bbox"] = [2, 2, float("inf"), 8]
    # Python's json writes (and reads back) NaN and Infinity.
    (tmp_path / "nan.json").write_text(json.dumps(data))
    report = check_coco_json(str(tmp_path / "nan.json"), str(tmp_path))
    assert not report.ok
    assert [m.split(":")[0] for m in report.errors["non_finite_box"]] == [
        "annotation 0",
        "annotation 2",
    ]
    assert "nan.json" in report.format()
    dicts = [
        {"file_name": "x.jpg", "image_id": 3, "height": 30, "width": 40, "annotations": [
            {"bbox": [float("nan"), 1, 10, 10], "bbox_mode": BoxMode.XYXY_ABS, "category_id": 0},
        ]},
    ]  # fmt: skip
    by_dicts = check_dataset_dicts(dicts, ["a"], check_images=False)
    assert by_dicts.errors["non_finite_box"][0].startswith("image 3 annotation #0")


def test_image_paths_outside_the_root_are_reported(tmp_path):
    root = tmp_path / "root"
    data = _dataset(root)
    outside = tmp_path / "elsewhere.jpg"
    Image.new("RGB", (40, 30)).save(outside)
    (root / "imgs" / "link.jpg").symlink_to(outside)
    data["images"] += [
        {"id": 2, "file_name": "../elsewhere.jpg", "width": 40, "height": 30},
        {"id": 3, "file_name": str(outside), "width": 40, "height": 30},
        {"id": 4, "file_name": "imgs/link.jpg", "width": 40, "height": 30},
        {"id": 5, "file_name": "imgs/../imgs/a.jpg", "width": 40, "height": 30},
    ]
    report = check_coco_dict(data, str(root))
    messages = report.warnings["image_outside_root"]
    assert [m.split(":")[0] for m in messages] == ["image 2", "image 3", "image 4"]
    assert "../elsewhere.jpg" in messages[0] and str(root) in messages[0]
    assert report.ok  # Detectron2 reads them: a warning, not an error
    dicts = [{"file_name": str(root / "imgs" / "link.jpg"), "image_id": 9, "annotations": []}]
    by_dicts = check_dataset_dicts(dicts, ["a"], image_root=str(root))
    assert by_dicts.warnings["image_outside_root"][0].startswith("image 9")


def test_high_bit_depth_images_are_reported(tmp_path):
    data = _dataset(tmp_path)
    Image.fromarray(np.full((30, 40), 60000, np.uint16)).save(tmp_path / "imgs" / "a.png")
    data["images"][0]["file_name"] = "imgs/a.png"
    report = check_coco_dict(data, str(tmp_path))
    assert report.ok
    assert report.warnings["high_bit_depth"][0].startswith("image 0")
    assert "I;16" in report.warnings["high_bit_depth"][0]


def test_command_line_registered_dataset_reports_paths_outside_its_root(
    tmp_path, capsys, load_tool
):
    tool = load_tool("check_dataset")
    root = tmp_path / "root"
    data = _dataset(root)
    Image.new("RGB", (40, 30)).save(tmp_path / "out.jpg")
    data["images"][1]["file_name"] = "../out.jpg"
    (tmp_path / "d.json").write_text(json.dumps(data))
    register_coco_instances("check_outside", {}, str(tmp_path / "d.json"), str(root))
    try:
        assert tool.main(["--dataset", "check_outside"]) == 0
    finally:
        DatasetCatalog.remove("check_outside")
        MetadataCatalog.pop("check_outside")
    out = capsys.readouterr().out
    assert "image_outside_root (1):" in out and "image 1: " in out
