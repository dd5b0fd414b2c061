"""What every ``d2lite`` subcommand shares: the config from a file, overrides and ``--dataset``."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence

from d2lite import model_zoo
from d2lite.config import CfgNode, get_cfg
from d2lite.config.training_checks import (
    check_training_settings,
    check_weights_settings,
    from_scratch_overrides,
)
from d2lite.data.datasets import parse_dataset_arg, setup_coco_datasets
from d2lite.data.datasets.coco_register import DATASET_ARG_FORMAT
from d2lite.engine.launch import launch
from d2lite.extras.trash import register_trash_datasets
from d2lite.utils.logger import setup_logger

__all__ = [
    "DATASET_HELP",
    "add_dataset_argument",
    "ensure_logger",
    "format_results",
    "launch_from_args",
    "load_config",
    "resolve_config_file",
]

logger = logging.getLogger(__name__)

DATASET_HELP = (
    f"a COCO dataset to register, {DATASET_ARG_FORMAT} (IMAGE_ROOT defaults to the JSON's "
    "folder); repeatable. 'train' and '*_train' go to DATASETS.TRAIN, other names to "
    "DATASETS.TEST, unless the KEY VALUE overrides set them; NUM_CLASSES follows the JSON's "
    "categories unless the config file or the overrides set it"
)


def _dataset_arg(text: str) -> str:
    # Checked while parsing, so a malformed --dataset is a usage error, not a traceback.
    try:
        parse_dataset_arg(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from e
    return text


def add_dataset_argument(parser: argparse.ArgumentParser) -> None:
    """Adds ``--dataset NAME=JSON_FILE[:IMAGE_ROOT]`` (repeatable) to ``parser``."""
    parser.add_argument(
        "--dataset",
        action="append",
        default=[],
        type=_dataset_arg,
        metavar=DATASET_ARG_FORMAT,
        help=DATASET_HELP,
    )


def ensure_logger() -> None:
    """Sets up the "d2lite" logger on stdout unless a caller (e.g. the demo) already did."""
    if not logging.getLogger("d2lite").handlers:
        setup_logger(name="d2lite")


def resolve_config_file(path: str) -> str:
    """Returns ``path`` if it is a file, else the model-zoo config of that name.

    So ``--config-file COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml`` works from any
    directory once d2lite is installed, as ``model_zoo.get_config_file`` does in a script.

    Raises:
        FileNotFoundError: if ``path`` is neither a file nor a model-zoo config.
    """
    if not path or os.path.isfile(path):
        return path
    try:
        return model_zoo.get_config_file(path)
    except RuntimeError as e:
        raise FileNotFoundError(f"Config file {path} does not exist. {e}") from e


def load_config(
    config_file: str,
    opts: Sequence[str] | None = None,
    datasets: Sequence[str] = (),
    *,
    freeze: bool = True,
    missing_data_ok: bool = False,
    training: bool = False,
    from_scratch: bool = False,
) -> CfgNode:
    """Builds a config: defaults, ``config_file``, the ``KEY VALUE`` overrides, then the COCO
    datasets of ``DATASETS.COCO_REGISTER`` and ``datasets`` registered (see
    ``d2lite.data.datasets.setup_coco_datasets``), and the trash datasets the config names
    that are still unregistered (see ``d2lite.extras.trash.register_trash_datasets``).

    Args:
        config_file (str): a YAML file or a model-zoo config name; "" for the defaults.
        opts (Sequence[str] | None): ``KEY VALUE`` overrides. Defaults to None.
        datasets (Sequence[str]): ``--dataset`` texts. Defaults to ().
        freeze (bool): freeze the result. Defaults to True.
        missing_data_ok (bool): warn, instead of failing, when a dataset's files are missing
            (a tool that only needs class names, such as predict). Defaults to False.
        training (bool): the config trains a model: warn before anything is built when it
            would start from random weights with settings made for pretrained ones (see
            ``check_training_settings``). Defaults to False.
        from_scratch (bool): merge ``from_scratch_overrides`` (no weights, a norm that learns,
            nothing frozen); a key the overrides ``opts`` set keeps the user's value.
            Defaults to False.

    Either way, torchvision ResNet weights in ``MODEL.WEIGHTS`` get the input settings they
    need (``check_weights_settings``), so the ``config.yaml`` a run saves has them too.
    """
    config_file = resolve_config_file(config_file)
    opts = list(opts or [])
    cfg = get_cfg()
    if config_file:
        cfg.merge_from_file(config_file)
    cfg.merge_from_list(opts)
    if from_scratch:
        chosen = set(opts[0::2])
        pairs = from_scratch_overrides(cfg)
        cfg.merge_from_list(
            [x for k, v in zip(pairs[0::2], pairs[1::2]) if k not in chosen for x in (k, v)]
        )
    if training:
        check_training_settings(cfg)
    else:
        check_weights_settings(cfg)
    try:
        setup_coco_datasets(cfg, datasets, config_file=config_file, opts=opts)
    except FileNotFoundError as e:
        if not missing_data_ok:
            raise
        logger.warning(f"{e}; the datasets are not registered (class names are unknown)")
    register_trash_datasets([*cfg.DATASETS.TRAIN, *cfg.DATASETS.TEST])
    if freeze:
        cfg.freeze()
    return cfg


def launch_from_args(main, args: argparse.Namespace) -> None:
    """Runs ``main(args)`` in the processes ``default_argument_parser``'s arguments ask for."""
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )


def format_results(results: dict | None) -> list[str]:
    """One line of COCO box AP figures and one of per-class AP, for a final summary."""
    results = results or {}
    if "bbox" not in results and results and all(isinstance(v, dict) for v in results.values()):
        # Several test datasets: Trainer.test returns {dataset name: its results}.
        return [f"{name}: {line}" for name, res in results.items() for line in format_results(res)]
    bbox = results.get("bbox", {})
    if not bbox:
        return ["No evaluation results (DATASETS.TEST is empty, or has no annotations)"]
    keys = [k for k in ("AP", "AP50", "AP75", "APs", "APm", "APl") if k in bbox]
    lines = ["bbox " + "  ".join(f"{k}={bbox[k]:.1f}" for k in keys)]
    per_class = {k[3:]: v for k, v in bbox.items() if k.startswith("AP-")}
    if per_class:
        lines.append("per class AP: " + ", ".join(f"{k} {v:.1f}" for k, v in per_class.items()))
    return lines
