"""Command-line arguments and per-run setup shared by the training scripts."""

from __future__ import annotations

import argparse
import os

import torch

from d2lite.config import CfgNode
from d2lite.utils import comm
from d2lite.utils.collect_env import collect_env_info
from d2lite.utils.env import seed_all_rng
from d2lite.utils.file_io import atomic_output
from d2lite.utils.logger import setup_logger

__all__ = ["default_argument_parser", "default_setup", "set_float32_precision"]


def default_argument_parser(epilog: str | None = None) -> argparse.ArgumentParser:
    """Returns the parser of Detectron2's training scripts.

    Trailing ``KEY VALUE`` pairs are collected in ``args.opts`` for ``cfg.merge_from_list``.
    """
    epilog = epilog or (
        "Examples:\n\n"
        "Run on single machine:\n"
        "    $ tools/train_net.py --num-gpus 8 --config-file cfg.yaml\n\n"
        "Change some config options:\n"
        "    $ tools/train_net.py --config-file cfg.yaml MODEL.WEIGHTS /path/to/weight.pth "
        "SOLVER.BASE_LR 0.001\n"
    )
    parser = argparse.ArgumentParser(
        epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config-file", default="", metavar="FILE", help="path to config file")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="Whether to attempt to resume from the checkpoint directory.",
    )
    parser.add_argument("--eval-only", action="store_true", help="perform evaluation only")
    parser.add_argument("--num-gpus", type=int, default=1, help="number of gpus *per machine*")
    parser.add_argument("--num-machines", type=int, default=1, help="total number of machines")
    parser.add_argument(
        "--machine-rank", type=int, default=0, help="the rank of this machine (unique per machine)"
    )
    # A port derived from the pid, so two jobs on one machine rarely collide.
    port = 2**15 + 2**14 + hash(os.getpid()) % 2**14
    parser.add_argument(
        "--dist-url",
        default=f"tcp://127.0.0.1:{port}",
        help="initialization URL for pytorch distributed backend.",
    )
    parser.add_argument(
        "opts",
        help="Modify config options at the end of the command, as 'PATH.KEY VALUE' pairs.",
        default=None,
        nargs=argparse.REMAINDER,
    )
    return parser


def default_setup(cfg: CfgNode, args: argparse.Namespace) -> None:
    """Prepares a run: output directory, loggers, the environment and config in ``log.txt``
    (at DEBUG, so not on the terminal), the config saved as ``OUTPUT_DIR/config.yaml`` (main
    process), RNG seeds, cuDNN benchmark and ``FLOAT32_PRECISION``. ``args`` is only logged
    and read for ``config_file``/``eval_only`` (any object works, e.g. ``{}``); a config
    without SEED, CUDNN_BENCHMARK or FLOAT32_PRECISION gets Detectron2's defaults for them.
    """
    output_dir = cfg.OUTPUT_DIR
    if comm.is_main_process() and output_dir:
        os.makedirs(output_dir, exist_ok=True)
    rank = comm.get_rank()
    setup_logger(output_dir, distributed_rank=rank, name="fvcore")
    setup_log = setup_logger(output_dir, distributed_rank=rank)
    setup_log.info("Rank of current process: %d. World size: %d", rank, comm.get_world_size())
    # The long dumps go to log.txt only (DEBUG): on the terminal they buried the run's summary.
    setup_log.debug("Environment info:\n%s", collect_env_info())
    setup_log.info("Command line arguments: %s", args)
    config_file = getattr(args, "config_file", "")
    if config_file:
        with open(config_file) as f:
            setup_log.debug("Contents of args.config_file=%s:\n%s", config_file, f.read())
    if comm.is_main_process() and output_dir:
        setup_log.debug("Running with full config:\n%s", cfg.dump())
        path = os.path.join(output_dir, "config.yaml")
        # Atomic: a run killed while writing must not leave a config.yaml that merges half.
        with atomic_output(path) as tmp, open(tmp, "w") as f:
            f.write(cfg.dump())
        setup_log.info("Full config saved to %s", path)
    # Each rank gets its own seed, so data augmentation differs between ranks.
    seed = cfg.get("SEED", -1)
    seed_all_rng(None if seed < 0 else seed + rank)
    if not getattr(args, "eval_only", False):
        torch.backends.cudnn.benchmark = cfg.get("CUDNN_BENCHMARK", False)
    if cfg.get("FLOAT32_PRECISION", ""):
        set_float32_precision(cfg.FLOAT32_PRECISION)
        setup_log.info("float32 matmul precision: %s", torch.get_float32_matmul_precision())


def set_float32_precision(precision: str) -> None:
    """Sets how CUDA computes float32 matrix products and convolutions (a no-op on the CPU).

    Args:
        precision (str): "highest" (true float32), "high" or "medium" (TF32 allowed), as in
            ``torch.set_float32_matmul_precision``.
    """
    if not torch.cuda.is_available():
        return
    torch.set_float32_matmul_precision(precision)
    torch.backends.cudnn.allow_tf32 = precision != "highest"
