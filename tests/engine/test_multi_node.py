"""Multi-node jobs on one host (item 14): ``torchrun --nnodes 2`` and ``train_net.py
--num-machines 2`` train as one node with the same total batch, and a failed rank is named by
the others instead of leaving them waiting in a collective."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
import torch
from engine_toys import ddp_toy_rank_fails

from d2lite.data import DatasetCatalog, MetadataCatalog
from d2lite.data.datasets.coco import register_coco_instances
from d2lite.extras.synthetic import TRASH_CLASSES, make_trash_dataset
from d2lite.engine import default_argument_parser, launch
from d2lite.model_zoo import get_config_file

TRAIN_NET = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "train_net.py")
LOSSES = ("loss_rpn_cls", "loss_rpn_loc", "loss_cls", "loss_box_reg", "total_loss")

# Bounds the rendezvous and every collective of the jobs below (30 minutes by default).
TIMEOUT = timedelta(seconds=60)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_machines(func, args) -> tuple[dict[int, Exception], float]:
    """Runs ``launch`` as machine 0 and machine 1 of a job (one process each) in two threads,
    as two hosts would; returns each machine's exception and the seconds it all took."""
    url = f"tcp://127.0.0.1:{_free_port()}"
    errors: dict[int, Exception] = {}

    def machine(rank: int) -> None:
        try:
            launch(func, 1, 2, rank, url, args=args, timeout=TIMEOUT)
        except Exception as e:
            errors[rank] = e

    start = time.monotonic()
    threads = [threading.Thread(target=machine, args=(r,), daemon=True) for r in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=3 * TIMEOUT.total_seconds())
    assert not any(t.is_alive() for t in threads), "a machine still waits for the other"
    return errors, time.monotonic() - start


def test_a_rank_that_raises_is_named_by_the_rank_waiting_for_it():
    # Rank 0, whose failure is the harder one to report: with tcp:// the job's store would die
    # with its process if machine 0's launcher did not host it.
    errors, seconds = _two_machines(ddp_toy_rank_fails, ("raise", 0))
    assert "ValueError: rank 0 broke on purpose" in str(errors[0])
    message = str(errors[1])
    assert "Rank 1 of 2: communication with the other ranks failed" in message
    assert "Rank 0 failed first: ValueError: rank 0 broke on purpose." in message
    assert seconds < TIMEOUT.total_seconds()


def test_a_killed_rank_is_named_by_the_rank_waiting_for_it():
    errors, seconds = _two_machines(ddp_toy_rank_fails, ("kill", 1))
    assert "signal SIGKILL" in str(errors[1])
    message = str(errors[0])
    assert "Rank 0 of 2: communication with the other ranks failed" in message
    assert "Rank(s) [1] reported no error" in message and "killed" in message
    assert seconds < TIMEOUT.total_seconds()


def _train_net_opts(dataset: str, weights: str, out_dir: str) -> list[str]:
    return [
        "--config-file", get_config_file("tiny/faster_rcnn_tiny.yaml"),
        "DATASETS.TRAIN", f"('{dataset}',)",
        "DATASETS.TEST", "()",
        "MODEL.ROI_HEADS.NUM_CLASSES", str(len(TRASH_CLASSES)),
        "MODEL.WEIGHTS", weights,
        # The total batch: 1 image per node. See test_multi_process.py for the other options.
        "SOLVER.IMS_PER_BATCH", "2",
        "SOLVER.MAX_ITER", "3",
        "SOLVER.BASE_LR", "0.02",
        "SOLVER.WARMUP_ITERS", "0",
        "INPUT.RANDOM_FLIP", "none",
        "SEED", "0",
        "OUTPUT_DIR", out_dir,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def one_node(tmp_path_factory):
    """The synthetic trash data under ``root/trash`` (where the built-in "coco_trash_train"
    finds it with D2LITE_DATASETS=root), initial weights, and train_net.py trained on them in
    this process as one node."""
    root = tmp_path_factory.mktemp("multi_node")
    make_trash_dataset(str(root / "trash"), num_train=4, num_val=0, num_test=0, image_size=64)
    from d2lite.config import get_cfg
    from d2lite.modeling import build_model

    cfg = get_cfg()
    cfg.merge_from_file(get_config_file("tiny/faster_rcnn_tiny.yaml"))
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = len(TRASH_CLASSES)
    torch.manual_seed(0)
    weights = str(root / "init.pth")
    torch.save({"model": build_model(cfg).state_dict()}, weights)

    trash = root / "trash"
    register_coco_instances("multi_node_trash", {}, str(trash / "train.json"), str(trash))
    spec = importlib.util.spec_from_file_location("multi_node_train_net", TRAIN_NET)
    train_net = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_net)
    opts = _train_net_opts("multi_node_trash", weights, str(root / "one_node"))
    try:
        train_net.main(default_argument_parser().parse_args(opts))
    finally:
        DatasetCatalog.remove("multi_node_trash")
        MetadataCatalog.remove("multi_node_trash")
    expected = _result(root / "one_node")
    initial = torch.load(weights)["model"]
    # The weights moved far beyond the tolerance of the comparisons.
    assert max((expected[1][k] - v).abs().max().item() for k, v in initial.items()) > 1e-3
    return root, weights, expected


def _result(out_dir) -> tuple[dict, dict]:
    """The losses of the last line of metrics.json and the final weights."""
    with open(out_dir / "metrics.json") as f:
        last = [json.loads(line) for line in f][-1]
    weights = torch.load(out_dir / "model_final.pth", weights_only=False)["model"]
    return last, weights


def _run_nodes(commands: list[list[str]], root, timeout_s: float = 240) -> None:
    """Starts one process per node command and waits for all; each gets its own session,
    so a test that fails can kill a node with its workers."""
    env = {**os.environ, "D2LITE_DATASETS": str(root), "OMP_NUM_THREADS": "1"}
    logs = [open(root / f"node{k}.log", "w+") for k in range(len(commands))]
    procs = [
        subprocess.Popen(c, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        for c, log in zip(commands, logs)
    ]
    deadline = time.monotonic() + timeout_s
    try:
        for p in procs:
            p.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    for k, (p, log) in enumerate(zip(procs, logs)):
        log.seek(0)
        assert p.returncode == 0, f"node {k} exited with {p.returncode}:\n{log.read()[-3000:]}"
        log.close()


def _assert_same_training(result, expected) -> None:
    (last, weights), (expected_last, expected_weights) = result, expected
    assert last["iteration"] == expected_last["iteration"] == 2
    for key in LOSSES:
        assert last[key] == pytest.approx(expected_last[key], rel=1e-4, abs=1e-6), key
    for name, value in expected_weights.items():
        torch.testing.assert_close(weights[name], value, rtol=1e-4, atol=1e-6, msg=name)


def test_torchrun_two_nodes_train_as_one_node(one_node):
    root, weights, expected = one_node
    opts = _train_net_opts("coco_trash_train", weights, str(root / "torchrun"))
    endpoint = f"127.0.0.1:{_free_port()}"
    _run_nodes(
        [
            [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2",
             "--nproc-per-node", "1", "--node-rank", str(k), "--rdzv-backend", "c10d",
             "--rdzv-endpoint", endpoint, TRAIN_NET, *opts]
            for k in (0, 1)
        ],
        root,
    )  # fmt: skip
    _assert_same_training(_result(root / "torchrun"), expected)


def test_train_net_on_two_machines_trains_as_one_machine(one_node):
    root, weights, expected = one_node
    opts = _train_net_opts("coco_trash_train", weights, str(root / "machines"))
    url = f"tcp://127.0.0.1:{_free_port()}"
    _run_nodes(
        [
            [sys.executable, TRAIN_NET, "--num-machines", "2", "--machine-rank", str(k),
             "--dist-url", url, *opts]
            for k in (0, 1)
        ],
        root,
    )  # fmt: skip
    _assert_same_training(_result(root / "machines"), expected)
