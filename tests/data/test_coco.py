from __future__ import annotations

import json
import logging
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from d2lite.data import DatasetCatalog, MetadataCatalog
from d2lite.data.datasets import (
    DatasetAlreadyRegisteredError,
    convert_to_coco_dict,
    convert_to_coco_json,
    load_coco_json,
    register_all_coco,
    register_coco_instances,
)
from d2lite.extras.trash import TRASH_CLASSES, register_trash_datasets
from d2lite.structures import BoxMode

pytestmark = pytest.mark.usefixtures("clean_catalogs")


def _write(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


def _minimal(**overrides) -> dict:
    data = {
        "images": [{"id": 1, "file_name": "x.jpg", "width": 10, "height": 10}],
        "annotations": [{"id": 1, "image_id": 1, "bbox": [0, 0, 5, 5], "category_id": 3}],
        "categories": [{"id": 3, "name": "thing"}],
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize("first_id", [0, 1])
def test_load_maps_ids_to_contiguous(tmp_path, first_id, make_coco):
    json_file = make_coco(tmp_path, first_cat_id=first_id)
    dicts = load_coco_json(str(json_file), str(tmp_path), dataset_name=f"coco_ld_{first_id}")
    assert len(dicts) == 4  # the image without annotations is kept
    d0 = dicts[0]
    assert d0["file_name"] == str(tmp_path / "train/a.png")
    assert (d0["height"], d0["width"], d0["image_id"]) == (30, 40, 1)
    assert [a["category_id"] for a in d0["annotations"]] == [0, 1]
    assert d0["annotations"][0]["bbox"] == [5, 2, 10, 10]
    assert d0["annotations"][0]["bbox_mode"] == BoxMode.XYWH_ABS
    assert d0["annotations"][0]["iscrowd"] == 0
    assert dicts[3]["annotations"] == []
    meta = MetadataCatalog.get(f"coco_ld_{first_id}")
    assert meta.thing_classes == ["red", "green"]
    assert meta.thing_dataset_id_to_contiguous_id == {first_id: 0, first_id + 1: 1}


def test_sparse_ids_and_no_dataset_name(tmp_path):
    data = _minimal(
        categories=[{"id": 90, "name": "z"}, {"id": 7, "name": "a"}],
        annotations=[
            {"id": 1, "image_id": 1, "bbox": [0, 0, 2, 2], "category_id": 90, "extra": "e"},
            {"id": 2, "image_id": 1, "bbox": [1, 1, 2, 2], "category_id": 7, "iscrowd": 1},
        ],
    )
    f = _write(tmp_path / "s.json", data)
    dicts = load_coco_json(
        str(f), "root", dataset_name="coco_sparse", extra_annotation_keys=["extra"]
    )
    assert [a["category_id"] for a in dicts[0]["annotations"]] == [1, 0]
    assert dicts[0]["annotations"][0]["extra"] == "e"
    assert dicts[0]["annotations"][1]["iscrowd"] == 1
    assert MetadataCatalog.get("coco_sparse").thing_classes == ["a", "z"]
    raw = load_coco_json(str(f), "root")
    assert [a["category_id"] for a in raw[0]["annotations"]] == [90, 7]


def test_missing_annotations_key_is_ok(tmp_path):
    data = _minimal()
    del data["annotations"]
    dicts = load_coco_json(str(_write(tmp_path / "t.json", data)), "r")
    assert dicts[0]["annotations"] == []


def test_malformed_json_names_file_and_position(tmp_path):
    f = tmp_path / "bad.json"
    f.write_text('{"images": [\n  {"id": 1,}\n]}')
    with pytest.raises(ValueError, match=r"bad\.json is not valid JSON.*line 2 column"):
        load_coco_json(str(f), "r")


@pytest.mark.parametrize(
    "mutation, message",
    [
        (lambda d: d.pop("images"), "missing the top-level key 'images'"),
        (lambda d: d.pop("categories"), "missing the top-level key 'categories'"),
        (
            lambda d: d["annotations"][0].update(image_id=99),
            "annotation id 1 refers to image_id 99",
        ),
        (lambda d: d["annotations"][0].update(category_id=5), "annotation id 1 has category_id 5"),
        (lambda d: d["images"].append(dict(d["images"][0])), "duplicate images id 1"),
        (
            lambda d: d["annotations"].append(dict(d["annotations"][0])),
            "duplicate annotations id 1",
        ),
        (lambda d: d["categories"].append({"id": 3, "name": "b"}), "duplicate categories id 3"),
        (lambda d: d["images"][0].pop("height"), "image id 1 has no 'height'"),
        (lambda d: d["annotations"][0].update(bbox=[1, 2]), "annotation id 1 needs a 4-number"),
        (lambda d: d["annotations"][0].update(bbox=[1, 2, "3", 4]), "id 1 needs a 4-number"),
        (lambda d: d["categories"][0].pop("name"), "category id 3 has no 'name'"),
        (lambda d: d["images"][0].pop("id"), "an entry of 'images' has no 'id'"),
    ],
)
def test_bad_input_names_file_and_id(tmp_path, mutation, message):
    data = _minimal()
    mutation(data)
    f = _write(tmp_path / "broken.json", data)
    with pytest.raises(ValueError, match="broken.json") as info:
        load_coco_json(str(f), "r", dataset_name="coco_bad")
    assert message in str(info.value)
    assert "thing_classes" not in MetadataCatalog.get("coco_bad").as_dict()


def test_degenerate_boxes_dropped_with_one_warning(tmp_path, caplog):
    anns = [
        {"id": i, "image_id": 1, "bbox": bbox, "category_id": 3}
        for i, bbox in enumerate([[0, 0, 0, 5], [0, 0, 5, -1], [0, 0, 3, 3]], start=1)
    ]
    f = _write(tmp_path / "deg.json", _minimal(annotations=anns))
    with caplog.at_level(logging.WARNING, logger="d2lite.data.datasets.coco"):
        dicts = load_coco_json(str(f), "r")
    assert len(dicts[0]["annotations"]) == 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "dropped 2 annotations" in warnings[0].getMessage()


def test_large_json_loads_every_annotation(tmp_path):
    # Once also a wall-clock limit (3 s); timings belong to tools/benchmark.py, not to tests that
    # run on a shared CI machine, so this checks what the 100k-annotation load returns.
    n_images, per_image = 2000, 50
    images = [
        {"id": i, "file_name": f"{i}.jpg", "width": 64, "height": 48} for i in range(n_images)
    ]
    anns = [
        {
            "id": k,
            "image_id": k // per_image,
            "bbox": [1, 2, 3, 4],
            "category_id": k % 10,
            "iscrowd": 0,
        }
        for k in range(n_images * per_image)
    ]
    cats = [{"id": c, "name": str(c)} for c in range(10)]
    f = _write(tmp_path / "big.json", {"images": images, "annotations": anns, "categories": cats})
    dicts = load_coco_json(str(f), "r", dataset_name="coco_big")
    assert sum(len(d["annotations"]) for d in dicts) == 100_000
    assert [d["image_id"] for d in dicts] == list(range(n_images))
    assert all(len(d["annotations"]) == per_image for d in dicts)
    assert dicts[7]["annotations"][3]["category_id"] == (7 * per_image + 3) % 10


def test_register_is_lazy_idempotent_and_checks_conflicts(coco_dir):
    json_file, root = coco_dir
    register_coco_instances("coco_reg", {}, str(tmp := json_file), str(root))
    register_coco_instances("coco_reg", {}, str(tmp), str(root))  # cell re-run: no-op
    meta = MetadataCatalog.get("coco_reg")
    assert meta.json_file == str(json_file) and meta.image_root == str(root)
    assert meta.evaluator_type == "coco"
    assert "thing_classes" not in meta.as_dict()  # nothing read yet
    assert len(DatasetCatalog.get("coco_reg")) == 4
    assert meta.thing_classes == ["red", "green"]
    with pytest.raises(AssertionError, match="already registered.*other.json"):
        register_coco_instances("coco_reg", {}, str(root / "other.json"), str(root))
    with pytest.raises(AssertionError, match="cannot be set to a different value"):
        register_coco_instances(
            "coco_reg", {"thing_classes": ["x", "y"]}, str(json_file), str(root)
        )


def test_registration_is_picklable(coco_dir):
    json_file, root = coco_dir
    register_coco_instances("coco_pickle", {}, json_file, root)
    loader = pickle.loads(pickle.dumps(DatasetCatalog["coco_pickle"]))
    assert len(loader()) == 4


def test_convert_to_coco_dict_roundtrip(coco_dir, tmp_path):
    json_file, root = coco_dir
    register_coco_instances("coco_conv", {}, str(json_file), str(root))
    coco = convert_to_coco_dict("coco_conv")
    assert coco["categories"] == [{"id": 0, "name": "red"}, {"id": 1, "name": "green"}]
    assert len(coco["images"]) == 4 and len(coco["annotations"]) == 4
    ann = coco["annotations"][0]
    assert ann["id"] == 1 and ann["bbox"] == [5.0, 2.0, 10.0, 10.0] and ann["area"] == 100.0
    out = tmp_path / "out" / "c.json"
    convert_to_coco_json("coco_conv", str(out))
    reloaded = load_coco_json(str(out), str(root), dataset_name="coco_conv")
    assert [a["category_id"] for a in reloaded[0]["annotations"]] == [0, 1]
    out.write_text("{}")
    convert_to_coco_json("coco_conv", str(out))  # cached file kept
    assert out.read_text() == "{}"
    convert_to_coco_json("coco_conv", str(out), allow_cached=False)
    assert "images" in json.loads(out.read_text())


def test_convert_dataset_without_json_maps_ids_back():
    def dicts():
        box = {"bbox": [0, 0, 4, 6], "bbox_mode": BoxMode.XYXY_ABS, "category_id": 1}
        return [
            {"file_name": "f.jpg", "image_id": 7, "height": 8, "width": 8, "annotations": [box]}
        ]

    DatasetCatalog.register("coco_nojson", dicts)
    MetadataCatalog.get("coco_nojson").set(
        thing_classes=["a", "b"], thing_dataset_id_to_contiguous_id={10: 0, 20: 1}
    )
    coco = convert_to_coco_dict("coco_nojson")
    assert coco["categories"] == [{"id": 10, "name": "a"}, {"id": 20, "name": "b"}]
    assert coco["annotations"][0]["category_id"] == 20
    assert coco["annotations"][0]["bbox"] == [0.0, 0.0, 4.0, 6.0]
    assert coco["annotations"][0]["image_id"] == 7


def test_coco_2017_is_registered_at_import_and_trash_on_request(tmp_path, monkeypatch, make_coco):
    assert {"coco_2017_train", "coco_2017_val"} <= set(DatasetCatalog.list())
    for name in ("coco_2017_train", "coco_2017_val"):
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    register_all_coco(str(tmp_path))
    coco_meta = MetadataCatalog.get("coco_2017_val")
    assert coco_meta.image_root == str(tmp_path / "coco" / "val2017")
    monkeypatch.setenv("D2LITE_DATASETS", str(tmp_path))
    assert register_trash_datasets(["coco_trash_train", "coco_trash_val", "other"]) == [
        "coco_trash_train",
        "coco_trash_val",
    ]
    assert register_trash_datasets(["coco_trash_train"]) == []  # registered already: kept
    assert MetadataCatalog.get("coco_trash_val").thing_classes == TRASH_CLASSES
    meta = MetadataCatalog.get("coco_trash_train")
    assert meta.json_file == str(tmp_path / "trash" / "train.json")
    trash = tmp_path / "trash"
    make_coco(trash)
    (trash / "train.json").write_text(
        (trash / "train.json")
        .read_text()
        .replace('"red"', '"General trash"')
        .replace('"green"', '"Paper"')
    )
    with pytest.raises(AssertionError, match="cannot be set to a different value"):
        DatasetCatalog.get("coco_trash_train")  # only 2 of the 10 classes in this toy json
    with pytest.raises(FileNotFoundError):
        DatasetCatalog.get("coco_trash_val")


def test_registering_a_name_again_follows_detectron2_with_a_no_op_for_the_same_files(coco_dir):
    json_file, root = coco_dir
    assert "coco_trash_train" not in DatasetCatalog  # nothing of the course registered at import
    register_coco_instances("coco_trash_train", {}, "x", "y")  # the course notebook's call
    register_coco_instances("coco_trash_train", {}, "x", "y")  # the cell run again: no-op
    assert MetadataCatalog.get("coco_trash_train").json_file == "x"
    with pytest.raises(DatasetAlreadyRegisteredError, match="already registered") as info:
        register_coco_instances("coco_trash_train", {}, str(json_file), str(root))
    assert isinstance(info.value, AssertionError)
    assert "'x', 'y'" in str(info.value) and str(json_file) in str(info.value)
    assert str(root) in str(info.value)
    DatasetCatalog.remove("coco_trash_train")
    MetadataCatalog.remove("coco_trash_train")
    register_coco_instances("coco_trash_train", {}, str(json_file), str(root))
    assert MetadataCatalog.get("coco_trash_train").json_file == str(json_file)
    assert len(DatasetCatalog.get("coco_trash_train")) == 4
    assert MetadataCatalog.get("coco_trash_train").thing_classes == ["red", "green"]


def test_a_name_registered_by_a_plain_function_is_named_in_the_clash(coco_dir):
    json_file, root = coco_dir
    DatasetCatalog.register("coco_own_func", _toy_loader)
    with pytest.raises(AssertionError, match="already registered with .*_toy_loader"):
        register_coco_instances("coco_own_func", {}, str(json_file), str(root))


def _toy_loader() -> list[dict]:
    return []


def test_course_style_registration_cell_runs_twice_in_a_fresh_process(coco_dir):
    json_file, root = coco_dir
    cell = (
        "from d2lite.data import DatasetCatalog\n"
        "from d2lite.data.datasets import register_coco_instances\n"
        "for _ in range(2):\n"
        "    try:\n"
        f"        register_coco_instances('coco_trash_train', {{}}, {str(json_file)!r}, "
        f"{str(root)!r})\n"
        "    except AssertionError:\n"
        "        pass\n"
        "try:\n"
        "    register_coco_instances('coco_trash_train', {}, 'other.json', 'other/')\n"
        "except AssertionError as e:\n"
        "    print('clash:', e)\n"
        "print(len(DatasetCatalog.get('coco_trash_train')))\n"
    )
    out = subprocess.run([sys.executable, "-c", cell], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    clash, count = out.stdout.strip().splitlines()
    assert count == "4"
    assert "other.json" in clash and str(json_file) in clash


def test_nothing_of_the_course_is_registered_at_import():
    code = (
        "import d2lite\n"
        "from d2lite.data import DatasetCatalog, MetadataCatalog\n"
        "print(DatasetCatalog.list(), MetadataCatalog.list())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "coco_trash" not in out.stdout and "coco_2017_train" in out.stdout


def test_dataset_dicts_are_sorted_by_image_id_as_in_detectron2(tmp_path):
    images = [{"id": i, "file_name": f"{i}.jpg", "height": 10, "width": 10} for i in (7, 2, 5)]
    data = {"images": images, "annotations": [], "categories": [{"id": 0, "name": "a"}]}
    json_file = tmp_path / "unsorted.json"
    json_file.write_text(json.dumps(data))
    dicts = load_coco_json(str(json_file), str(tmp_path))
    assert [d["image_id"] for d in dicts] == [2, 5, 7]


def test_load_keeps_segmentation_and_keypoints_as_detectron2(tmp_path, caplog):
    square = [0, 0, 4, 0, 4, 4, 0, 4]
    base = {"image_id": 1, "bbox": [0, 0, 4, 4], "category_id": 3}
    anns = [
        dict(base, id=1, segmentation=[square, [1, 1]], keypoints=[1, 2, 2, 0, 0, 0]),
        dict(base, id=2, segmentation=[[1, 1, 2, 2]]),  # no valid polygon: the instance goes
        dict(base, id=3, segmentation={"counts": [0, 4, 96], "size": [10, 10]}),
    ]
    f = _write(tmp_path / "seg.json", _minimal(annotations=anns))
    with caplog.at_level(logging.WARNING, logger="d2lite.data.datasets.coco"):
        dicts = load_coco_json(str(f), "r")
    annos = dicts[0]["annotations"]
    assert len(annos) == 2 and "fewer than 3 points" in caplog.text
    assert annos[0]["segmentation"] == [square]
    assert annos[0]["keypoints"] == [1.5, 2.5, 2, 0.5, 0.5, 0]  # pixel centres
    rle = annos[1]["segmentation"]
    assert isinstance(rle["counts"], bytes) and rle["size"] == [10, 10]  # compressed


def test_convert_areas_segmentations_keypoints_and_rotated_boxes():
    rle = {"size": [4, 4], "counts": b"04<"}  # compressed RLE of 4 pixels
    square = [[0, 0, 4, 0, 4, 3, 0, 3]]
    xywh = {"bbox_mode": BoxMode.XYWH_ABS, "category_id": 0}
    annos = [
        {"bbox": np.array([1, 1, 3, 5]), "bbox_mode": BoxMode.XYXY_ABS, "category_id": 0},
        dict(xywh, bbox=[0, 0, 4, 3], segmentation=square),
        dict(xywh, bbox=[0, 0, 2, 2], segmentation=rle, keypoints=[1.5, 2.5, 2, 0.5, 0.5, 0]),
        {"bbox": [5, 5, 2, 3, 30], "bbox_mode": BoxMode.XYWHA_ABS, "category_id": 0},
    ]
    record = {"file_name": "f", "image_id": 1, "height": 8, "width": 8, "annotations": annos}
    DatasetCatalog.register("coco_areas", lambda: [record])
    MetadataCatalog.get("coco_areas").thing_classes = ["a"]
    out = convert_to_coco_dict("coco_areas")["annotations"]
    assert out[0]["bbox"] == [1, 1, 2, 4] and out[0]["area"] == 8
    assert out[1]["area"] == 12 and out[1]["segmentation"] == square
    assert out[2]["area"] == 4 and out[2]["segmentation"]["counts"] == "04<"
    assert out[2]["keypoints"] == [1, 2, 2, 0, 0, 0] and out[2]["num_keypoints"] == 1
    assert out[3]["bbox"] == [5, 5, 2, 3, 30] and out[3]["area"] == 6
    assert rle["counts"] == b"04<" and annos[2]["keypoints"][0] == 1.5  # inputs untouched
    json.dumps(out)
    record["annotations"] = [{"bbox": [1, 2, 3], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0}]
    with pytest.raises(ValueError, match="4 numbers"):
        convert_to_coco_dict("coco_areas")


@pytest.mark.parametrize(
    "name", ["load_sem_seg", "load_lvis_json", "register_pascal_voc", "register_coco_panoptic"]
)
def test_other_dataset_loaders_import_and_refuse(name):
    import d2lite.data.datasets as datasets

    with pytest.raises(NotImplementedError, match=name):
        getattr(datasets, name)("a", "b")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_bbox_is_an_error_naming_file_and_annotation(tmp_path, value):
    data = _minimal()
    data["annotations"][0]["bbox"] = [0, value, 5, 5]
    f = tmp_path / "nonfinite.json"
    f.write_text(json.dumps(data))  # json writes NaN / Infinity and reads them back
    with pytest.raises(ValueError, match="nonfinite.json") as info:
        load_coco_json(str(f), "r", dataset_name="coco_nonfinite")
    assert "annotation id 1" in str(info.value) and "non-finite" in str(info.value)


def test_image_paths_outside_image_root_warn_once_with_a_count(tmp_path, caplog):
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "out.jpg").write_bytes(b"")
    (root / "link.jpg").symlink_to(tmp_path / "out.jpg")
    names = ["../out.jpg", str(tmp_path / "out.jpg"), "link.jpg", "sub/../ok.jpg", "ok.jpg"]
    names += [f"../many{i}.jpg" for i in range(20)]
    images = [{"id": i, "file_name": n, "width": 4, "height": 4} for i, n in enumerate(names)]
    f = _write(tmp_path / "escape.json", _minimal(images=images, annotations=[]))
    with caplog.at_level(logging.WARNING, logger="d2lite.data.datasets.coco"):
        dicts = load_coco_json(str(f), str(root))
    assert len(dicts) == 25  # Detectron2 reads them: warn, do not refuse
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "escape.json" in warnings[0] and "23 of 25" in warnings[0]
    assert "../out.jpg" in warnings[0] and str(root) in warnings[0]


def test_image_paths_inside_a_symlinked_root_do_not_warn(tmp_path, caplog):
    (tmp_path / "real").mkdir()
    (tmp_path / "linked").symlink_to(tmp_path / "real")
    f = _write(tmp_path / "in.json", _minimal())
    with caplog.at_level(logging.WARNING, logger="d2lite.data.datasets.coco"):
        load_coco_json(str(f), str(tmp_path / "linked"))
        load_coco_json(str(f), "")  # no root to escape from
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]
