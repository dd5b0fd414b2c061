from __future__ import annotations

import functools

import pytest
import torch
from engine_toys import ToyModel, ddp_worker, toy_dataset

from d2lite.data.catalog import DatasetCatalog, MetadataCatalog
from d2lite.engine import SimpleTrainer, launch
from d2lite.engine.launch import _restore_catalogs, _snapshot_catalogs


def test_launch_single_process_calls_directly():
    out = []
    launch(out.append, 1, args=(5,))
    assert out == [5]


def test_launch_rejects_auto_url_on_several_machines():
    with pytest.raises(ValueError, match="explicit dist_url"):
        launch(print, 2, num_machines=2, dist_url="auto")


def _toy_dataset(n):
    return [{"image_id": i} for i in range(n)]


def test_catalog_snapshot_keeps_picklable_registrations(caplog):
    DatasetCatalog.register("engine_test_ok", functools.partial(_toy_dataset, 2))
    DatasetCatalog.register("engine_test_lambda", lambda: [])
    MetadataCatalog.get("engine_test_ok").set(thing_classes=["a", "b"])
    try:
        datasets, metadata = _snapshot_catalogs()
        assert "engine_test_ok" in datasets and "engine_test_lambda" not in datasets
        assert "engine_test_lambda" in caplog.text and "functools.partial" in caplog.text
        assert metadata["engine_test_ok"]["thing_classes"] == ["a", "b"]
        # A worker that lacks them gets them back.
        DatasetCatalog.remove("engine_test_ok")
        MetadataCatalog.remove("engine_test_ok")
        _restore_catalogs((datasets, metadata))
        assert DatasetCatalog.get("engine_test_ok") == [{"image_id": 0}, {"image_id": 1}]
        assert MetadataCatalog.get("engine_test_ok").thing_classes == ["a", "b"]
    finally:
        for name in ("engine_test_ok", "engine_test_lambda"):
            DatasetCatalog.pop(name, None)
            MetadataCatalog.pop(name, None)


def test_restored_catalogs_override_the_workers_builtins():
    # A script re-pointed a built-in name; the spawned worker re-registered the original on import.
    snapshot = ({"coco_trash_train": functools.partial(_toy_dataset, 3)},
                {"coco_trash_train": {"thing_classes": ["mine"]}})
    original = DatasetCatalog["coco_trash_train"]
    original_meta = MetadataCatalog.get("coco_trash_train").as_dict()
    try:
        _restore_catalogs(snapshot)
        assert len(DatasetCatalog.get("coco_trash_train")) == 3
        assert MetadataCatalog.get("coco_trash_train").thing_classes == ["mine"]
    finally:
        DatasetCatalog.remove("coco_trash_train")
        DatasetCatalog.register("coco_trash_train", original)
        MetadataCatalog.remove("coco_trash_train")
        MetadataCatalog.get("coco_trash_train").set(**original_meta)


def test_two_gloo_processes_match_one_process_with_the_whole_batch(tmp_path):
    full_batch = torch.rand(8, 5, generator=torch.Generator().manual_seed(1))
    steps = 4
    out_file = str(tmp_path / "ddp.pth")
    DatasetCatalog.register("engine_launch_ds", functools.partial(toy_dataset, 3))
    MetadataCatalog.get("engine_launch_ds").set(thing_classes=["a"])
    try:
        launch(
            ddp_worker, 2, dist_url="auto", args=(full_batch, steps, out_file, "engine_launch_ds")
        )
    finally:
        DatasetCatalog.remove("engine_launch_ds")
        MetadataCatalog.remove("engine_launch_ds")
    ddp_state = torch.load(out_file, weights_only=True)

    torch.manual_seed(0)
    model = ToyModel()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    SimpleTrainer(model, iter(lambda: full_batch, None), opt).train(0, steps)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(ddp_state[k], v, rtol=1e-5, atol=1e-6)
    assert not torch.equal(ddp_state["linear.weight"], ToyModel().linear.weight.detach())


def test_default_timeout_is_exported_and_is_launch_s_default():
    import inspect
    from datetime import timedelta

    from d2lite import engine

    assert engine.DEFAULT_TIMEOUT == timedelta(minutes=30)
    assert inspect.signature(engine.launch).parameters["timeout"].default is engine.DEFAULT_TIMEOUT
