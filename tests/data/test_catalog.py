from __future__ import annotations

import pickle

import pytest

from d2lite.data import DatasetCatalog, Metadata, MetadataCatalog

pytestmark = pytest.mark.usefixtures("clean_catalogs")


def _dicts():
    return [{"file_name": "a.jpg", "image_id": 1}]


def test_register_get_list_remove():
    DatasetCatalog.register("cat_test_ds", _dicts)
    assert "cat_test_ds" in DatasetCatalog.list()
    assert DatasetCatalog.get("cat_test_ds") == _dicts()
    DatasetCatalog.remove("cat_test_ds")
    assert "cat_test_ds" not in DatasetCatalog.list()


def test_duplicate_registration_is_assertion_error():
    DatasetCatalog.register("cat_dup", _dicts)
    with pytest.raises(AssertionError, match="'cat_dup' is already registered"):
        DatasetCatalog.register("cat_dup", _dicts)
    with pytest.raises(AssertionError, match="function"):
        DatasetCatalog.register("cat_not_callable", [1, 2])


def test_unknown_name_lists_registered():
    DatasetCatalog.register("cat_known", _dicts)
    with pytest.raises(KeyError, match="cat_missing.*not registered.*cat_known"):
        DatasetCatalog.get("cat_missing")


def test_clear():
    DatasetCatalog.register("cat_clear", _dicts)
    DatasetCatalog.clear()
    assert DatasetCatalog.list() == []


def test_metadata_set_get_and_conflict():
    meta = MetadataCatalog.get("cat_meta")
    assert MetadataCatalog.get("cat_meta") is meta
    meta.thing_classes = ["a", "b"]
    meta.thing_classes = ("a", "b")  # same value (list vs tuple) is fine
    with pytest.raises(
        AssertionError, match=r"(?s)thing_classes.*cat_meta.*\['a', 'b'\] != \['a', 'c'\]"
    ):
        meta.thing_classes = ["a", "c"]
    assert meta.set(evaluator_type="coco", x=1) is meta
    assert meta.get("x") == 1 and meta.get("nope", 7) == 7
    assert meta.as_dict()["evaluator_type"] == "coco"
    with pytest.raises(AttributeError, match="'missing_attr'.*'cat_meta'"):
        meta.missing_attr
    assert "cat_meta" in MetadataCatalog.list()
    MetadataCatalog.remove("cat_meta")
    assert "cat_meta" not in MetadataCatalog.list()


def test_metadata_pickles():
    meta = Metadata(name="p").set(thing_classes=["x"])
    restored = pickle.loads(pickle.dumps(meta))
    assert restored.thing_classes == ["x"] and restored.name == "p"
    assert not hasattr(restored, "nothing")


def test_metadata_old_names_map_to_new_ones(caplog):
    meta = MetadataCatalog.get("cat_renamed")
    meta.class_names = ["a", "b"]
    assert meta.thing_classes == ["a", "b"] and "class_names" not in meta.as_dict()
    assert meta.class_names == ["a", "b"] and meta.get("class_names") == ["a", "b"]
    meta.dataset_id_to_contiguous_id = {3: 0}
    assert meta.thing_dataset_id_to_contiguous_id == {3: 0}
    assert "renamed to 'thing_classes'" in caplog.text
