"""The ``d2lite`` command: one entry point for the tools, ``d2lite SUBCOMMAND [ARGS ...]``.

Each subcommand is a module of this package (``tools/*.py`` are thin shims over the same
modules, for the Detectron2 habit ``python tools/train_net.py ...``); ``python -m d2lite``
runs the same command. A subcommand's module is imported only when it runs, so that
``d2lite --help`` lists them all without building anything.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import d2lite

__all__ = ["COMMANDS", "main"]


class Command(NamedTuple):
    """A subcommand: the function that runs it (``module:function``, called with the argument
    list) and its one-line help."""

    target: str
    help: str


COMMANDS: dict[str, Command] = {
    "train": Command(
        "d2lite.cli.train_net:invoke_main",
        "train a detector (Detectron2's tools/train_net.py; --dataset NAME=JSON[:IMAGES])",
    ),
    "eval": Command(
        "d2lite.cli.train_net:invoke_eval", "evaluate trained weights (train --eval-only)"
    ),
    "predict": Command(
        "d2lite.cli.predict:main", "run a model on images: annotated pictures and a CSV"
    ),
    "check": Command("d2lite.cli.check_dataset:main", "check a COCO dataset before training"),
    "visualize": Command(
        "d2lite.cli.visualize_data:main", "draw the ground truth, or what the loader feeds"
    ),
    "analyze": Command(
        "d2lite.cli.analyze_model:main", "a model's parameters, FLOPs, activations, structure"
    ),
    "benchmark": Command(
        "d2lite.cli.benchmark:main", "time training, inference or data loading (vs torchvision)"
    ),
    "make-trash": Command(
        "d2lite.extras.synthetic:main", "write the synthetic trash dataset (COCO format)"
    ),
    "plot-metrics": Command(
        "d2lite.extras.plot_metrics:main", "draw a run's training curves from its metrics.json"
    ),
}

_EPILOG = """Run 'd2lite SUBCOMMAND --help' for a subcommand's arguments. Your own COCO data:

  d2lite train --config-file C.yaml --dataset train=data/train.json:data/images \\
      --dataset test=data/test.json:data/images OUTPUT_DIR out
  d2lite eval --config-file out/config.yaml MODEL.WEIGHTS out/model_final.pth
  d2lite predict --config-file out/config.yaml --input data/test --output out/pred \\
      MODEL.WEIGHTS out/model_final.pth

--config-file takes a YAML file or a model-zoo name (COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml).
"""


def _parser() -> argparse.ArgumentParser:
    width = max(len(name) for name in COMMANDS)
    listing = "\n".join(f"  {name:<{width}}  {cmd.help}" for name, cmd in COMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="d2lite",
        usage="d2lite [-h] [--version] SUBCOMMAND [ARGS ...]",
        description=f"d2lite {d2lite.__version__}: train, evaluate and run Detectron2-style "
        f"Faster R-CNN detectors.\n\nsubcommands:\n{listing}",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"d2lite {d2lite.__version__}")
    parser.add_argument("command", metavar="SUBCOMMAND", help=argparse.SUPPRESS)
    parser.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


@contextlib.contextmanager
def _program_name(name: str) -> Iterator[None]:
    # argparse names the program after sys.argv[0]: "d2lite train" in every subcommand's
    # usage and errors, whichever way it was started (script, python -m d2lite, a shim).
    saved = sys.argv[0] if sys.argv else ""
    if sys.argv:
        sys.argv[0] = name
    else:
        sys.argv.append(name)
    try:
        yield
    finally:
        sys.argv[0] = saved


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``d2lite SUBCOMMAND ARGS``; returns the exit status.

    Args:
        argv (Sequence[str] | None): the arguments after ``d2lite``. Defaults to None
            (``sys.argv[1:]``).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    if not argv:
        parser.print_help()
        return 2
    args = parser.parse_args(argv)
    if args.command not in COMMANDS:
        parser.error(f"unknown subcommand {args.command!r}; choose from {', '.join(COMMANDS)}")
    module_name, function = COMMANDS[args.command].target.split(":")
    run = getattr(importlib.import_module(module_name), function)
    with _program_name(f"d2lite {args.command}"):
        result = run(args.args)
    # check returns an exit code; the others return what they made (results, paths).
    return result if isinstance(result, int) and not isinstance(result, bool) else 0
