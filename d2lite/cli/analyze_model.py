"""``d2lite analyze``: a model's parameters, FLOPs, activations or structure (through fvcore).

Examples::

    d2lite analyze --config-file C.yaml --tasks parameter
    d2lite analyze --config-file C.yaml --tasks flop --num-inputs 10 MODEL.DEVICE cpu

FLOPs are counted in inference mode on images from the test loader of ``DATASETS.TEST[0]``
(after its resizing); when no test dataset is configured, or its files are missing, on a
synthetic ``MIN_SIZE_TEST``-sized square image. fvcore counts one fused multiply-add as one flop.
"""
from __future__ import annotations

import argparse
import itertools
import logging
import warnings
from collections import Counter
from typing import Iterator

import numpy as np
import torch
from tabulate import tabulate
from torch import nn

with warnings.catch_warnings():
    # fvcore.nn scripts its losses with TorchScript on import, which torch now calls deprecated.
    warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated", FutureWarning)
    from fvcore.nn import ActivationCountAnalysis, FlopCountAnalysis, parameter_count_table

from d2lite.data import build_detection_test_loader
from d2lite.modeling import build_model

from .common import add_dataset_argument, ensure_logger, load_config

__all__ = ["get_parser", "main"]

logger = logging.getLogger(__name__)


def get_parser() -> argparse.ArgumentParser:
    """The arguments of ``d2lite analyze``."""
    parser = argparse.ArgumentParser(
        description="Report a model's parameters, FLOPs, activations or structure (fvcore)."
    )
    parser.add_argument("--config-file", required=True, metavar="FILE", help="config file")
    parser.add_argument(
        "--tasks",
        nargs="+",
        required=True,
        choices=["parameter", "flop", "activation", "structure"],
        help="what to report",
    )
    parser.add_argument("--num-inputs", type=int, default=1, help="images to average FLOPs over")
    parser.add_argument("--max-depth", type=int, default=5, help="depth of the parameter table")
    add_dataset_argument(parser)
    parser.add_argument(
        "opts", nargs=argparse.REMAINDER, default=[], help="config overrides: KEY VALUE pairs"
    )
    return parser


class _ImageToTensors(nn.Module):
    """Makes the model traceable: one image tensor in, plain tensors out.

    ``GeneralizedRCNN`` takes ``list[dict]`` and returns ``Instances``, which ``torch.jit.trace``
    (used by fvcore) cannot pass through.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        instances = self.model([{"image": image}])[0]["instances"]
        return instances.pred_boxes.tensor, instances.scores, instances.pred_classes


def _input_images(cfg, num: int) -> Iterator[torch.Tensor]:
    """Images (C, H, W) from the test loader, or synthetic ones when it cannot be built."""
    if len(cfg.DATASETS.TEST):
        try:
            loader = build_detection_test_loader(cfg, cfg.DATASETS.TEST[0])
            for batch in itertools.islice(loader, num):
                yield batch[0]["image"]
            return
        except (KeyError, FileNotFoundError, OSError) as e:
            logger.warning(f"Cannot read {cfg.DATASETS.TEST[0]} ({e}); using synthetic images")
    size = cfg.INPUT.MIN_SIZE_TEST or 512
    generator = torch.Generator().manual_seed(0)
    for _ in range(num):
        yield torch.randint(0, 256, (3, size, size), generator=generator).to(torch.uint8)


def _count(model: nn.Module, cfg, num: int, analysis_cls) -> tuple[float, Counter]:
    """Mean total and per-operator counts (in G) of ``analysis_cls`` over ``num`` inputs."""
    wrapper = _ImageToTensors(model).eval()
    totals, per_op = [], Counter()
    for image in _input_images(cfg, num):
        with torch.no_grad():
            analysis = analysis_cls(wrapper, (image,))
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            analysis.tracer_warnings("none")
            totals.append(analysis.total() / 1e9)
            per_op.update({k: v / 1e9 for k, v in analysis.by_operator().items()})
    n = max(1, len(totals))
    return float(np.mean(totals)), Counter({k: v / n for k, v in per_op.items()})


def main(argv: list[str] | None = None) -> dict[str, str]:
    """Runs the tool; returns the text of each task's report."""
    args = get_parser().parse_args(argv)
    ensure_logger()
    # FLOPs fall back to synthetic images when the test data is missing (see _input_images).
    cfg = load_config(args.config_file, args.opts, args.dataset, missing_data_ok=True)
    model = build_model(cfg).eval()
    reports = {}
    for task in args.tasks:
        if task == "parameter":
            reports[task] = parameter_count_table(model, max_depth=args.max_depth)
        elif task == "structure":
            reports[task] = str(model)
        else:
            cls = FlopCountAnalysis if task == "flop" else ActivationCountAnalysis
            total, per_op = _count(model, cfg, args.num_inputs, cls)
            unit = "GFlops" if task == "flop" else "M activations"
            scale = 1.0 if task == "flop" else 1e3
            lines = [f"Average {task} count over {args.num_inputs} input(s): {total * scale:.4f}"]
            lines[0] += f" {unit}"
            ops = [(op, v * scale) for op, v in per_op.most_common()]
            lines += tabulate(ops, tablefmt="plain", floatfmt=".4f").splitlines()
            reports[task] = "\n    ".join(lines)
        logger.info(f"{task}:\n{reports[task]}")
    return reports


if __name__ == "__main__":
    main()
