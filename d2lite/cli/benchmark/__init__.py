"""``d2lite benchmark``: d2lite's training, inference and data loading, beside torchvision's.

Examples:
    d2lite benchmark --config-file model_zoo/COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml \\
        --task train --size 512 --batch 2 --compare torchvision MODEL.ROI_HEADS.NUM_CLASSES 10
    d2lite benchmark --config-file model_zoo/COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml \\
        --task data --size 512 --batch 2 MODEL.ROI_HEADS.NUM_CLASSES 10

Each measurement runs in a fresh process (so its peak memory is its own), rounds alternate
d2lite and torchvision, warm-up iterations are excluded and medians are reported. Both models
get the same synthetic inputs and targets, frozen BN and frozen stages, sampling sizes and
proposal counts; their RPN box deltas are zero-initialised so that random-init models produce
like-for-like amounts of proposals, which are printed beside every time, and for inference
their classifiers are scaled down alike so that scores do not saturate.

d2lite's inference runs the path ``DefaultPredictor`` uses (``prepare_for_inference``); every
round also runs the plain eager model on the same image and checks that the detections match.
FLOPs are counted by ``torch.utils.flop_counter`` over one real iteration (forward and backward
in training): 2 per multiply-add of every conv, matmul and their gradients, the same unit as
the matmul peak printed beside them.
"""
from __future__ import annotations

import argparse
import logging

import torch

from .data import bench_data
from .model import bench_model
from .neighbours import parse_neighbour

__all__ = ["main", "parse_args"]


def _image_size(text: str) -> tuple[int, int]:
    """'512' -> (512, 512); '800x1333' -> (800, 1333)."""
    try:
        sides = [int(v) for v in text.lower().split("x")]
    except ValueError:
        sides = []
    if len(sides) not in (1, 2) or min(sides) <= 0:
        raise argparse.ArgumentTypeError(f"expected S or HxW in pixels, got {text!r}")
    return (sides[0], sides[-1])


def _neighbour(text: str) -> tuple[str, int]:
    try:
        return parse_neighbour(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from e


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The arguments of ``d2lite benchmark``."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--config-file", required=True, help="a d2lite / Detectron2 YAML config")
    parser.add_argument("--task", choices=["train", "eval", "data"], default="train")
    parser.add_argument("--compare", choices=["torchvision"], default=None)
    parser.add_argument(
        "--size", type=_image_size, default=(512, 512),
        help="input size in pixels: S (square) or HxW, e.g. 800x1333",
    )
    parser.add_argument("--batch", type=int, default=2, help="images per training step")
    parser.add_argument("--iters", type=int, default=3, help="timed iterations per round")
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations per round")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds per framework")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--plain", action="store_true", help="time d2lite's plain eager model in --task eval"
    )
    parser.add_argument(
        "--amp", action="store_true",
        help="run both models under autocast: float16 on CUDA, bfloat16 on a CPU that computes "
        "it natively",
    )
    parser.add_argument(
        "--torchvision-ftz", action="store_true",
        help="let torchvision flush denormals too (d2lite does by default on the CPU)",
    )
    parser.add_argument(
        "--profile", type=int, default=0, metavar="K",
        help="print the K ops with the most self time of one iteration (first round)",
    )
    parser.add_argument(
        "--neighbour", action="append", default=[], type=_neighbour, metavar="KIND[:NICE]",
        help="after the quiet rounds, run the same rounds again beside this load (repeatable): "
        "busy (one spinning thread), torch (a --threads torch matmul loop), train (a d2lite "
        "training job); :NICE runs it at that nice level",
    )
    parser.add_argument(
        "--neighbour-seconds", type=float, default=1800.0,
        help="longest a neighbour runs (it is stopped when the loaded rounds end)",
    )
    parser.add_argument(
        "--torchvision-passive", action="store_true",
        help="give torchvision d2lite's passive OpenMP waiting (default: OpenMP's own)",
    )
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    """Runs the benchmark of ``--task``; returns its figures (also printed as a table)."""
    logging.basicConfig(level=logging.WARNING)
    args = parse_args(argv)
    return bench_data(args) if args.task == "data" else bench_model(args)

