"""COCO datasets named on the command line or in the config, registered before any loader is built.

Two forms, read by one function, :func:`setup_coco_datasets`::

    d2lite train --config-file C.yaml --dataset train=data/train.json:data \\
        --dataset test=data/test.json

    DATASETS:
      COCO_REGISTER: [["train", "data/train.json", "data"], ["test", "data/test.json", "data"]]

``--dataset NAME=JSON[:IMAGE_ROOT]`` adds ``[NAME, JSON, IMAGE_ROOT]`` to
``DATASETS.COCO_REGISTER`` (the image root defaults to the JSON's folder), so the
``config.yaml`` a run saves registers the same data again for ``d2lite eval`` or ``predict``.
Class names come from the JSON's categories (sorted by id, as ``load_coco_json`` numbers them).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence

import yaml

from ...config import CfgNode
from ..catalog import DatasetCatalog, MetadataCatalog
from . import coco_rules
from .coco import register_coco_instances

__all__ = ["parse_dataset_arg", "setup_coco_datasets", "is_train_name"]

logger = logging.getLogger(__name__)

DATASET_ARG_FORMAT = "NAME=JSON_FILE[:IMAGE_ROOT]"
_NUM_CLASSES = ("MODEL", "ROI_HEADS", "NUM_CLASSES")

# Names this module registered, so that running setup again in one process (a notebook, the
# tests) replaces its own registration instead of clashing with it.
_REGISTERED: set[str] = set()


def parse_dataset_arg(text: str) -> list[str]:
    """Parses ``NAME=JSON_FILE[:IMAGE_ROOT]`` into ``[name, json_file, image_root]``.

    The JSON path ends at ``.json:`` when there is one (so an image root may hold ``:``); the
    image root defaults to the JSON file's folder. Paths become absolute, so that a saved
    config names the same files from any directory.

    Raises:
        ValueError: if ``text`` has no ``NAME=`` part or no JSON file.
    """
    name, sep, rest = text.partition("=")
    if not sep or not name.strip() or not rest:
        raise ValueError(f"--dataset {text!r}: expected {DATASET_ARG_FORMAT}")
    cut = rest.find(".json:")
    if cut >= 0:
        json_file, image_root = rest[: cut + 5], rest[cut + 6 :]
    elif ":" in rest and not rest.endswith(".json"):
        json_file, _, image_root = rest.partition(":")
    else:
        json_file, image_root = rest, ""
    if not json_file:
        raise ValueError(f"--dataset {text!r}: no JSON file; expected {DATASET_ARG_FORMAT}")
    json_file = _absolute(json_file)
    image_root = _absolute(image_root) if image_root else os.path.dirname(json_file)
    return [name.strip(), json_file, image_root]


def is_train_name(name: str) -> bool:
    """Whether ``--dataset NAME=...`` goes to DATASETS.TRAIN: "train" or "..._train"."""
    return name == "train" or name.endswith("_train")


def setup_coco_datasets(
    cfg: CfgNode,
    datasets: Sequence[str] = (),
    *,
    config_file: str = "",
    opts: Sequence[str] = (),
) -> list[str]:
    """Registers the COCO datasets of ``DATASETS.COCO_REGISTER`` and of ``--dataset`` arguments.

    With ``datasets``: they join ``DATASETS.COCO_REGISTER`` (replacing entries of the same
    name), and ``DATASETS.TRAIN`` becomes the names that :func:`is_train_name` accepts,
    ``DATASETS.TEST`` the others, each unless ``opts`` sets it. Then every entry is registered
    (its thing_classes read from the JSON now, so a missing file fails before the model is
    built) and ``MODEL.ROI_HEADS.NUM_CLASSES`` follows the classes of the registered training
    datasets (the test ones when none trains), unless ``opts`` or ``config_file`` itself sets
    it. A value that ``config_file`` inherits through ``_BASE_`` does not count: model-zoo
    configs inherit it with their datasets (``_base_/datasets/trash.yaml`` sets DATASETS and
    NUM_CLASSES together), and the datasets registered here replace those.

    Args:
        cfg (CfgNode): the merged config, not frozen; changed in place.
        datasets (Sequence[str]): ``NAME=JSON_FILE[:IMAGE_ROOT]`` texts. Defaults to ().
        config_file (str): the config file merged into ``cfg``; only its own keys are read.
            Defaults to "" (none).
        opts (Sequence[str]): the ``KEY VALUE`` overrides merged into ``cfg``. Defaults to ().

    Returns:
        list[str]: the names registered.

    Raises:
        ValueError: for a malformed entry, a JSON whose top level or categories break the
            loader's rules (``coco_rules``), or a name that a script registered with other
            files.
        FileNotFoundError: if a JSON file or image folder does not exist.
    """
    parsed = [parse_dataset_arg(d) for d in datasets]
    entries = _merged_entries(cfg.DATASETS.COCO_REGISTER, parsed)
    cfg.DATASETS.COCO_REGISTER = entries
    given = set(opts[0::2])
    if parsed:
        names = list(dict.fromkeys(e[0] for e in parsed))
        if "DATASETS.TRAIN" not in given:
            cfg.DATASETS.TRAIN = tuple(n for n in names if is_train_name(n))
        if "DATASETS.TEST" not in given:
            cfg.DATASETS.TEST = tuple(n for n in names if not is_train_name(n))
    classes = {name: _register(name, json_file, root) for name, json_file, root in entries}
    explicit = ".".join(_NUM_CLASSES) in given or _file_sets(config_file, _NUM_CLASSES)
    _follow_classes(cfg, classes, explicit)
    return list(classes)


def _absolute(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))


def _merged_entries(from_config: Sequence, from_args: list[list[str]]) -> list[list[str]]:
    """The config's entries (checked, paths made absolute), then the arguments' ones; an
    argument replaces a config entry of the same name."""
    entries: dict[str, list[str]] = {}
    for entry in from_config:
        is_triple = isinstance(entry, (list, tuple)) and len(entry) == 3
        if not is_triple or not all(isinstance(v, str) and v for v in entry):
            raise ValueError(
                f"DATASETS.COCO_REGISTER entries are [name, json_file, image_root], got {entry!r}"
            )
        entries[entry[0]] = [entry[0], _absolute(entry[1]), _absolute(entry[2])]
    for entry in from_args:
        entries[entry[0]] = entry
    return list(entries.values())


def _class_names(name: str, json_file: str, image_root: str) -> list[str]:
    """The category names of ``json_file``, sorted by category id."""
    if not os.path.isfile(json_file):
        raise FileNotFoundError(f"Dataset '{name}': the COCO JSON {json_file} does not exist")
    if not os.path.isdir(image_root):
        raise FileNotFoundError(f"Dataset '{name}': the image folder {image_root} does not exist")
    with open(json_file, encoding="utf-8") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"Dataset '{name}': {json_file} is not a COCO JSON object: {e}") from e
    # The loader's rules (coco_rules), so that what registers here also loads.
    problems = coco_rules.top_level_problems(data)
    if not problems:
        categories, problems = coco_rules.entry_problems("categories", data["categories"])
    if problems:
        raise ValueError(f"Dataset '{name}': {json_file}: {problems[0].message}")
    return [c["name"] for c in sorted(categories, key=lambda c: c["id"])]


def _register(name: str, json_file: str, image_root: str) -> list[str]:
    classes = _class_names(name, json_file, image_root)
    if name in _REGISTERED:  # ours from an earlier call: its files or classes may have changed
        DatasetCatalog.pop(name, None)
        MetadataCatalog.pop(name, None)
        _REGISTERED.discard(name)
    try:
        register_coco_instances(name, {"thing_classes": classes}, json_file, image_root)
    except AssertionError as e:  # registered by a script, with other files or classes
        raise ValueError(f"Cannot register dataset '{name}' from {json_file}: {e}") from e
    _REGISTERED.add(name)
    logger.info(f"Registered '{name}': {json_file}, images in {image_root}, {len(classes)} classes")
    return classes


def _file_sets(config_file: str, key: tuple[str, ...]) -> bool:
    """Whether ``config_file`` itself (not one of its ``_BASE_`` files) sets ``key``."""
    if not config_file:
        return False
    with open(config_file, encoding="utf-8") as f:
        node = yaml.safe_load(f)
    for part in key:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _follow_classes(cfg: CfgNode, classes: dict[str, list[str]], explicit: bool) -> None:
    """Sets NUM_CLASSES from the registered datasets that train (or else, that are tested);
    an ``explicit`` value is kept, with a warning when the data has another number."""
    used = [n for n in cfg.DATASETS.TRAIN if n in classes] or [
        n for n in cfg.DATASETS.TEST if n in classes
    ]
    if not used:
        return
    num_classes = cfg.MODEL.ROI_HEADS.NUM_CLASSES
    if explicit:
        if classes[used[0]] and len(classes[used[0]]) != num_classes:
            logger.warning(
                f"MODEL.ROI_HEADS.NUM_CLASSES is set to {num_classes}, but dataset "
                f"'{used[0]}' has {len(classes[used[0]])} categories"
            )
        return
    first = classes[used[0]]
    for other in used[1:]:
        if classes[other] != first:
            logger.warning(
                f"Datasets '{used[0]}' and '{other}' have different categories "
                f"({len(first)} and {len(classes[other])}); NUM_CLASSES follows '{used[0]}'"
            )
    if not first:
        logger.warning(f"Dataset '{used[0]}' has no categories; NUM_CLASSES stays as configured")
        return
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = len(first)
    logger.info(f"MODEL.ROI_HEADS.NUM_CLASSES = {len(first)}, the categories of '{used[0]}'")
