"""Two Gloo processes of 1 image per batch train as one process of 2 images (item 13)."""

from __future__ import annotations

import torch
from engine_toys import train_tiny_rcnn

from d2lite.extras.synthetic import TRASH_CLASSES
from d2lite.engine import launch

LOSSES = ("loss_rpn_cls", "loss_rpn_loc", "loss_cls", "loss_box_reg", "total_loss")
MAX_ITER = 4


def _opts(trash_datasets, out_dir):
    return [
        "DATASETS.TRAIN", f"('{trash_datasets['train']}',)",
        "DATASETS.TEST", "()",
        "MODEL.ROI_HEADS.NUM_CLASSES", str(len(TRASH_CLASSES)),
        # IMS_PER_BATCH is the total over the processes: 1 image each in the 2-process run.
        "SOLVER.IMS_PER_BATCH", "2",
        "SOLVER.MAX_ITER", str(MAX_ITER),
        "SOLVER.BASE_LR", "0.02",
        "SOLVER.WARMUP_ITERS", "0",
        # The order of the images is the sampler's, seeded by SEED the same on every rank
        # (square images keep it through the grouping); each image's flip is drawn from its
        # place in that global stream, so it is the same whatever the number of processes.
        "INPUT.RANDOM_FLIP", "horizontal",
        "SEED", "0",
        # Every 64x64 image fills both sampling budgets (checked below), so normalising the
        # losses by the batch equals averaging them over images, hence over ranks.
        "MODEL.RPN.BATCH_SIZE_PER_IMAGE", "64",
        "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "64",
        "OUTPUT_DIR", str(out_dir),
    ]  # fmt: skip


def test_two_gloo_processes_of_one_image_train_as_one_process_of_two(tmp_path, trash_datasets):
    two_file, one_file = str(tmp_path / "two.pth"), str(tmp_path / "one.pth")
    launch(
        train_tiny_rcnn, 2, dist_url="auto", args=(_opts(trash_datasets, tmp_path / "2"), two_file)
    )
    train_tiny_rcnn(_opts(trash_datasets, tmp_path / "1"), one_file)
    two, one = torch.load(two_file), torch.load(one_file)

    # Precondition of the comparison: every image got exactly 64 anchors and 64 proposals.
    sampled_rpn = [p + n for p, n in zip(one["history"]["rpn/num_pos_anchors"],
                                          one["history"]["rpn/num_neg_anchors"])]  # fmt: skip
    sampled_roi = [f + b for f, b in zip(one["history"]["roi_head/num_fg_samples"],
                                          one["history"]["roi_head/num_bg_samples"])]  # fmt: skip
    assert sampled_rpn == [64.0] * MAX_ITER and sampled_roi == [64.0] * MAX_ITER
    for key in LOSSES:
        assert len(one["history"][key]) == MAX_ITER, key
        torch.testing.assert_close(
            torch.tensor(two["history"][key]), torch.tensor(one["history"][key]),
            rtol=1e-4, atol=1e-6, msg=lambda m, key=key: f"{key}: {m}",
        )  # fmt: skip
    # The losses changed as the model learnt, and the weights moved far beyond the tolerance.
    assert one["history"]["total_loss"][0] != one["history"]["total_loss"][-1]
    moved = max((one["model"][k] - v).abs().max().item() for k, v in one["initial"].items())
    assert moved > 1e-3
    for name, value in one["model"].items():
        torch.testing.assert_close(two["model"][name], value, rtol=1e-4, atol=1e-6, msg=name)
