"""Toy model, data and a small training script shared by the engine tests.

Run as a script (``python engine_toys.py OUT_DIR MAX_ITER PERIOD SLEEP``) it trains the toy
model with checkpoints every PERIOD iterations, resuming from OUT_DIR when it holds one; the
kill-and-resume test starts it in a subprocess.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from d2lite.engine import hooks  # noqa: E402
from d2lite.engine.train_loop import SimpleTrainer  # noqa: E402


class ToyModel(nn.Module):
    """Linear regression on rows ``[x (4 values), y]`` returning two losses."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 1)

    def forward(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        err = self.linear(batch[:, :4]) - batch[:, 4:]
        return {"loss_mse": (err**2).mean(), "loss_l1": err.abs().mean() * 0.1}


def random_batches(batch_size: int = 4):
    while True:
        yield torch.rand(batch_size, 5)


def seeded_batches(start_iter: int, batch_size: int = 4):
    """The batch of iteration i depends on i only, so a resumed run replays the same data."""
    it = start_iter
    while True:
        yield torch.rand(batch_size, 5, generator=torch.Generator().manual_seed(it))
        it += 1


def make_checkpointer(model, save_dir, **checkpointables):
    try:
        from d2lite.checkpoint import DetectionCheckpointer
    except ImportError:
        from fvcore.common.checkpoint import Checkpointer as DetectionCheckpointer
    return DetectionCheckpointer(model, save_dir, **checkpointables)


def train_toy(out_dir: str, max_iter: int, period: int, sleep: float) -> nn.Module:
    """Trains (or resumes) the toy model with SGD+momentum and a step LR schedule."""
    torch.manual_seed(0)
    model = ToyModel()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.5)
    trainer = SimpleTrainer(model, None, optimizer)
    checkpointer = make_checkpointer(model, out_dir, trainer=trainer)
    trainer.register_hooks(
        [
            hooks.LRScheduler(optimizer, scheduler),
            hooks.PeriodicCheckpointer(checkpointer, period),
            hooks.CallbackHook(after_step=lambda t: time.sleep(sleep)),
        ]
    )
    start_iter = 0
    if checkpointer.has_checkpoint():
        checkpointer.resume_or_load("", resume=True)
        start_iter = trainer.iter + 1
    trainer.data_loader = seeded_batches(start_iter)
    trainer.train(start_iter, max_iter)
    torch.save(model.state_dict(), os.path.join(out_dir, "final_weights.pth"))
    return model


def toy_dataset(n: int) -> list[dict]:
    return [{"image_id": i} for i in range(n)]


def ddp_worker(full_batch: torch.Tensor, steps: int, out_file: str, dataset_name: str) -> None:
    """One rank of the Gloo test: trains on its half of ``full_batch`` with DDP."""
    from d2lite.data import DatasetCatalog, MetadataCatalog
    from d2lite.engine import create_ddp_model
    from d2lite.utils import comm

    # Registered by the launching process only: launch() must have carried it over.
    assert len(DatasetCatalog.get(dataset_name)) == 3
    assert MetadataCatalog.get(dataset_name).thing_classes == ["a"]

    torch.manual_seed(0)
    model = create_ddp_model(ToyModel(), broadcast_buffers=False)
    half = full_batch.shape[0] // comm.get_world_size()
    mine = full_batch[comm.get_rank() * half : (comm.get_rank() + 1) * half]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    trainer = SimpleTrainer(model, iter(lambda: mine, None), optimizer)
    trainer.train(0, steps)
    if comm.is_main_process():
        torch.save(model.module.state_dict(), out_file)


def train_tiny_rcnn(opts: list[str], out_file: str) -> None:
    """Trains the tiny Faster R-CNN with ``DefaultTrainer`` on the tiny config plus ``opts``,
    in one process or as one rank of ``launch``. The main process saves to ``out_file`` every
    scalar's history (the losses averaged over ranks), the initial and the final weights."""
    from d2lite.config import get_cfg
    from d2lite.engine import DefaultTrainer
    from d2lite.model_zoo import get_config_file
    from d2lite.utils import comm

    cfg = get_cfg()
    cfg.merge_from_file(get_config_file("tiny/faster_rcnn_tiny.yaml"))
    cfg.merge_from_list(opts)
    torch.manual_seed(0)
    trainer = DefaultTrainer(cfg)
    trainer.resume_or_load(resume=False)
    model = getattr(trainer.model, "module", trainer.model)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    trainer.train()
    if comm.is_main_process():
        history = {k: [v for v, _ in h.values()] for k, h in trainer.storage.histories().items()}
        torch.save({"history": history, "initial": initial, "model": model.state_dict()}, out_file)


def ddp_toy_rank_fails(how: str, failing_rank: int, fail_at: int = 2) -> None:
    """Trains the toy model with DDP; ``failing_rank`` fails before iteration ``fail_at``
    ("raise": a ValueError; "kill": SIGKILL on itself), while the others go on into the
    gradient all-reduce."""
    from d2lite.engine import create_ddp_model
    from d2lite.utils import comm

    def fail(trainer: SimpleTrainer) -> None:
        if comm.get_rank() == failing_rank and trainer.iter == fail_at:
            if how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise ValueError(f"rank {failing_rank} broke on purpose")

    torch.manual_seed(0)
    model = create_ddp_model(ToyModel(), broadcast_buffers=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = SimpleTrainer(model, random_batches(), optimizer)
    trainer.register_hooks([hooks.CallbackHook(before_step=fail)])
    trainer.train(0, fail_at + 20)


if __name__ == "__main__":
    train_toy(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
