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


def test_restore_keeps_what_the_worker_registered_itself():
    # Spawning re-ran the script's top level: the worker registered "engine_test_own" itself.
    own = functools.partial(_toy_dataset, 3)
    DatasetCatalog.register("engine_test_own", own)
    MetadataCatalog.get("engine_test_own").set(thing_classes=["a"])
    snapshot = (
        {"engine_test_own": functools.partial(_toy_dataset, 3)},
        {"engine_test_own": {"name": "engine_test_own", "thing_classes": ["a"], "json_file": "j"}},
    )
    try:
        _restore_catalogs(snapshot)
        assert DatasetCatalog["engine_test_own"] is own
        assert MetadataCatalog.get("engine_test_own").as_dict() == snapshot[1]["engine_test_own"]
    finally:
        DatasetCatalog.pop("engine_test_own", None)
        MetadataCatalog.pop("engine_test_own", None)


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


def test_failure_reports_name_the_rank_that_failed_first():
    import torch.distributed as dist

    from d2lite.engine.launch import _FailureReports

    reports = _FailureReports(dist.HashStore(), world_size=3)
    reports.post(2, "broken", RuntimeError("Connection reset by peer"))
    reports.post(1, "failed", ValueError("bad annotation"))
    assert reports.explain(0) == "Rank 1 failed first: ValueError: bad annotation."
    # Nobody reported an error of its own: the silent rank is named.
    silent = _FailureReports(dist.HashStore(), world_size=3)
    silent.post(2, "broken", RuntimeError("Connection reset by peer"))
    message = silent.explain(0)
    assert message.startswith("Rank(s) [1] reported no error") and "killed" in message
    silent.post(1, "broken", RuntimeError("Timed out"))
    assert "no rank reported its own error" in silent.explain(0)


def test_broken_communication_is_told_from_a_rank_s_own_error():
    from d2lite.engine.launch import _is_broken_communication

    gloo = "[gloo/transport/tcp/pair.cc:545] Read error [127.0.0.1]:1: Connection reset by peer"
    assert _is_broken_communication(RuntimeError(gloo))
    assert _is_broken_communication(RuntimeError("Timed out waiting 1800000ms for recv"))
    assert not _is_broken_communication(ValueError("bad annotation"))
    assert not _is_broken_communication(ConnectionError("the dataset server is down"))
    assert not _is_broken_communication(RuntimeError("CUDA out of memory"))
