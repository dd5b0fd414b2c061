"""A run killed with SIGKILL and resumed computes the uninterrupted run's losses, bit for bit."""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import signal

import pytest
import torch
from resume_tiny import train_tiny

MAX_ITER = 8


def _losses(out_dir) -> dict[int, dict]:
    """Iteration -> its losses; for an iteration run twice (killed, then resumed), the last."""
    ret: dict[int, dict] = {}
    with open(os.path.join(out_dir, "losses.jsonl")) as f:
        for line in f:
            row = json.loads(line)
            ret[row.pop("iteration")] = row
    return ret


def _replay(checkpoint: str) -> list[int]:
    """The images aspect-ratio grouping held back when ``checkpoint`` was saved."""
    state = torch.load(checkpoint, weights_only=True)["trainer"]["_trainer"]["data_loader"]
    return state["replay"]


def _widen_every_other_image(root, json_path: str) -> None:
    """Pads odd-numbered images to landscape (boxes stay put), so that aspect-ratio grouping
    has two groups and holds images back between batches."""
    from PIL import Image

    with open(json_path) as f:
        coco = json.load(f)
    for image in coco["images"][1::2]:
        path = os.path.join(root, image["file_name"])
        small = Image.open(path)
        wide = Image.new("RGB", (small.width * 3 // 2, small.height), (128, 128, 128))
        wide.paste(small, (0, 0))
        wide.save(path)
        image["width"] = wide.width
    with open(json_path, "w") as f:
        json.dump(coco, f)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    from d2lite.data import DatasetCatalog, MetadataCatalog
    from d2lite.data.datasets.coco import register_coco_instances
    from d2lite.extras.synthetic import make_trash_dataset

    root = tmp_path_factory.mktemp("resume_exact")
    paths = make_trash_dataset(str(root), num_train=6, num_val=0, num_test=0, image_size=48)
    _widen_every_other_image(root, paths["train"])
    name = "resume_exact_trash_train"
    register_coco_instances(name, {}, paths["train"], str(root))
    # One thread: the same float sums in every run, and no fight over the machine's cores.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train_tiny(str(root / "full"), name, num_workers=0, max_iter=MAX_ITER, seed=3)
        losses = _losses(root / "full")
        assert sorted(losses) == list(range(MAX_ITER))
        # Resume from the first checkpoint that held images back, so the resume must restore
        # them.
        ckpt = root / "full" / "model_{:07d}.pth"
        held = [i for i in range(MAX_ITER - 3) if _replay(str(ckpt).format(i))]
        assert held, "no checkpoint held an image back; change the seed so one does"
        yield name, losses, held[0]
    finally:
        torch.set_num_threads(threads)
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.mark.parametrize("num_workers", [0, 2])
def test_sigkill_then_resume_gives_the_uninterrupted_losses(tmp_path, uninterrupted, num_workers):
    name, full, resume_from = uninterrupted
    out = str(tmp_path / "run")
    # Forked, not spawned: the child needs no second import of torch and d2lite.
    killed = mp.get_context("fork").Process(
        target=train_tiny, args=(out, name, num_workers, MAX_ITER, 3, resume_from + 1)
    )
    killed.start()
    killed.join(timeout=120)
    if killed.is_alive():  # hung: never leave it running
        killed.kill()
    assert killed.exitcode == -signal.SIGKILL
    with open(os.path.join(out, "last_checkpoint")) as f:
        assert f.read().strip() == f"model_{resume_from:07d}.pth"
    killed_losses = _losses(out)
    assert max(killed_losses) == resume_from + 1
    # Each image's augmentation depends on its place in the data stream only, so loader
    # workers change nothing either.
    assert killed_losses == {i: full[i] for i in killed_losses}

    # Another SEED: the checkpoint, not the config, says how the run continues.
    # (DefaultTrainer's logger does not propagate to pytest's caplog.)
    records = _Records()
    logging.getLogger("d2lite").addHandler(records)
    train_tiny(out, name, num_workers, MAX_ITER, seed=11)
    assert not [m for m in records.messages if "restart" in m], records.messages
    resumed = _losses(out)
    assert sorted(resumed) == list(range(MAX_ITER))
    for it in range(resume_from + 1, MAX_ITER):
        assert resumed[it] == full[it], f"iteration {it}"
