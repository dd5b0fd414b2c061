"""Tests for the synthetic trash dataset generator."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from d2lite.extras.synthetic import TRASH_CLASSES, generate_image, make_trash_dataset

NAMES = [
    "General trash", "Paper", "Paper pack", "Metal", "Glass",
    "Plastic", "Styrofoam", "Plastic bag", "Battery", "Clothing",
]  # fmt: skip


def _make(out: Path, seed: int = 3) -> dict[str, str]:
    return make_trash_dataset(
        str(out), num_train=6, num_val=3, num_test=2, image_size=96, seed=seed
    )


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_same_seed_gives_identical_bytes(tmp_path):
    _make(tmp_path / "a")
    _make(tmp_path / "b")
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert len(a) == 3 + 6 + 3 + 2
    assert a == b


def test_other_seed_differs(tmp_path):
    _make(tmp_path / "a", seed=1)
    _make(tmp_path / "b", seed=2)
    assert _files(tmp_path / "a")["train.json"] != _files(tmp_path / "b")["train.json"]


def test_layout_categories_and_ids(tmp_path):
    paths = _make(tmp_path)
    assert set(paths) == {"train", "val", "test"}
    for split, count in [("train", 6), ("val", 3), ("test", 2)]:
        data = json.loads(Path(paths[split]).read_text())
        assert set(data) >= {"images", "annotations", "categories"}
        assert [c["id"] for c in data["categories"]] == list(range(10))
        assert [c["name"] for c in data["categories"]] == NAMES == TRASH_CLASSES
        assert [im["id"] for im in data["images"]] == list(range(count))
        for im in data["images"]:
            assert im["file_name"].startswith(f"{split}/") and im["file_name"].endswith(".jpg")
            with Image.open(tmp_path / im["file_name"]) as pil:
                assert pil.size == (im["width"], im["height"]) == (96, 96)
                assert pil.mode == "RGB"
    test = json.loads(Path(paths["test"]).read_text())
    assert test["annotations"] == []


def test_annotations_valid_and_inside_images(tmp_path):
    data = json.loads(Path(_make(tmp_path)["train"]).read_text())
    anns = data["annotations"]
    assert [a["id"] for a in anns] == list(range(len(anns)))
    assert len(anns) >= 6, "every image has at least one object"
    for a in anns:
        assert set(a) == {"id", "image_id", "category_id", "bbox", "area", "iscrowd"}
        x, y, w, h = a["bbox"]
        assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= 96 and y + h <= 96
        assert a["area"] == pytest.approx(w * h)
        assert a["iscrowd"] == 0 and 0 <= a["category_id"] <= 9
        assert 0 <= a["image_id"] < 6


def test_generated_boxes_lie_inside_the_image():
    rng = np.random.default_rng(0)
    img, objects = generate_image(rng, 128)
    arr = np.asarray(img, dtype=np.float32)
    assert arr.shape == (128, 128, 3)
    assert objects
    for _, (x0, y0, x1, y1) in objects:
        assert 0 <= x0 < x1 <= 128 and 0 <= y0 < y1 <= 128


def test_sizes_cover_small_medium_large():
    areas = []
    for i in range(40):
        _, objects = generate_image(np.random.default_rng(i), 256)
        areas += [(b[2] - b[0]) * (b[3] - b[1]) for _, b in objects]
    areas = np.asarray(areas)
    assert (areas < 32**2).any() and ((areas >= 32**2) & (areas < 96**2)).any()
    assert (areas >= 96**2).any()


def test_every_class_appears_in_a_default_size_dataset():
    classes = set()
    for i in range(30):
        classes |= {c for c, _ in generate_image(np.random.default_rng([0, 0, i]), 64)[1]}
    assert classes == set(range(10))


def test_bad_arguments_raise(tmp_path):
    with pytest.raises(ValueError, match="counts"):
        make_trash_dataset(str(tmp_path), num_train=-1)
    with pytest.raises(ValueError, match="image_size"):
        make_trash_dataset(str(tmp_path), image_size=8)
