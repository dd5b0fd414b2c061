"""Config versions: read configs written for older Detectron2 config formats.

Detectron2 numbers its config format (``VERSION``, now 2) and renames keys between versions;
``upgrade_config`` / ``downgrade_config`` walk a config through those renames one version at a
time, and ``merge_from_file`` uses them to read a file of an older version. A file without
``VERSION`` is taken for v1 when it has v1-only keys (``MODEL.WEIGHT``, ``TEST.AUG_ON``), else
for the current version.
"""
from __future__ import annotations

import logging

from fvcore.common.config import CfgNode as _CfgNodeBase

__all__ = ["upgrade_config", "downgrade_config", "guess_version"]

logger = logging.getLogger(__name__)

# (old key, new key) renamed when going from version i-1 to version i, for i = 1, 2.
_RENAMES: dict[int, list[tuple[str, str]]] = {
    1: [("MODEL.RPN_HEAD.NAME", "MODEL.RPN.HEAD_NAME")],
    2: [
        ("MODEL.WEIGHT", "MODEL.WEIGHTS"),
        ("MODEL.PANOPTIC_FPN.SEMANTIC_LOSS_SCALE", "MODEL.SEM_SEG_HEAD.LOSS_WEIGHT"),
        ("MODEL.PANOPTIC_FPN.RPN_LOSS_SCALE", "MODEL.RPN.LOSS_WEIGHT"),
        ("MODEL.PANOPTIC_FPN.INSTANCE_LOSS_SCALE", "MODEL.PANOPTIC_FPN.INSTANCE_LOSS_WEIGHT"),
        ("MODEL.PANOPTIC_FPN.COMBINE_ON", "MODEL.PANOPTIC_FPN.COMBINE.ENABLED"),
        ("MODEL.PANOPTIC_FPN.COMBINE_OVERLAP_THRESHOLD", "MODEL.PANOPTIC_FPN.COMBINE.OVERLAP_THRESH"),
        (
            "MODEL.PANOPTIC_FPN.COMBINE_STUFF_AREA_LIMIT",
            "MODEL.PANOPTIC_FPN.COMBINE.STUFF_AREA_LIMIT",
        ),
        (
            "MODEL.PANOPTIC_FPN.COMBINE_INSTANCES_CONFIDENCE_THRESHOLD",
            "MODEL.PANOPTIC_FPN.COMBINE.INSTANCES_CONFIDENCE_THRESH",
        ),
        ("MODEL.ROI_HEADS.SCORE_THRESH", "MODEL.ROI_HEADS.SCORE_THRESH_TEST"),
        ("MODEL.ROI_HEADS.NMS", "MODEL.ROI_HEADS.NMS_THRESH_TEST"),
        ("MODEL.RETINANET.INFERENCE_SCORE_THRESHOLD", "MODEL.RETINANET.SCORE_THRESH_TEST"),
        ("MODEL.RETINANET.INFERENCE_TOPK_CANDIDATES", "MODEL.RETINANET.TOPK_CANDIDATES_TEST"),
        ("MODEL.RETINANET.INFERENCE_NMS_THRESHOLD", "MODEL.RETINANET.NMS_THRESH_TEST"),
        ("TEST.DETECTIONS_PER_IMG", "TEST.DETECTIONS_PER_IMAGE"),
        ("TEST.AUG_ON", "TEST.AUG.ENABLED"),
        ("TEST.AUG_MIN_SIZES", "TEST.AUG.MIN_SIZES"),
        ("TEST.AUG_MAX_SIZE", "TEST.AUG.MAX_SIZE"),
        ("TEST.AUG_FLIP", "TEST.AUG.FLIP"),
    ],
}
LATEST = max(_RENAMES)


def _move(cfg: _CfgNodeBase, old: str, new: str) -> None:
    """Moves the value at dotted key ``old`` to ``new``, dropping groups that end up empty."""
    *old_path, old_leaf = old.split(".")
    node = cfg
    parents = []
    for part in old_path:
        parents.append((node, part))
        node = node[part]
    value = node.pop(old_leaf)
    for parent, part in reversed(parents):  # a rename must not leave an empty group behind
        if len(parent[part]):
            break
        del parent[part]
    *new_path, new_leaf = new.split(".")
    node = cfg
    for part in new_path:
        node = node.setdefault(part, type(cfg)())
    node[new_leaf] = value


def _upgrade_to(cfg: _CfgNodeBase, version: int) -> None:
    for old, new in _RENAMES[version]:
        _move(cfg, old, new)
    if version == 2:
        # v1 kept anchor settings per head; v2 has one MODEL.ANCHOR_GENERATOR, taken from the
        # head the model uses.
        head = "RETINANET" if cfg.MODEL.META_ARCHITECTURE == "RetinaNet" else "RPN"
        other = "RPN" if head == "RETINANET" else "RETINANET"
        _move(cfg, f"MODEL.{head}.ANCHOR_ASPECT_RATIOS", "MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS")
        _move(cfg, f"MODEL.{head}.ANCHOR_SIZES", "MODEL.ANCHOR_GENERATOR.SIZES")
        del cfg.MODEL[other]["ANCHOR_SIZES"]
        del cfg.MODEL[other]["ANCHOR_ASPECT_RATIOS"]
        del cfg.MODEL.RETINANET["ANCHOR_STRIDES"]


def _downgrade_from(cfg: _CfgNodeBase, version: int) -> None:
    for old, new in reversed(_RENAMES[version]):
        _move(cfg, new, old)
    if version == 2:
        _move(cfg, "MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS", "MODEL.RPN.ANCHOR_ASPECT_RATIOS")
        _move(cfg, "MODEL.ANCHOR_GENERATOR.SIZES", "MODEL.RPN.ANCHOR_SIZES")
        cfg.MODEL.RETINANET.ANCHOR_ASPECT_RATIOS = cfg.MODEL.RPN.ANCHOR_ASPECT_RATIOS
        cfg.MODEL.RETINANET.ANCHOR_SIZES = cfg.MODEL.RPN.ANCHOR_SIZES
        cfg.MODEL.RETINANET.ANCHOR_STRIDES = []  # never read, by any version


def upgrade_config(cfg: _CfgNodeBase, to_version: int | None = None) -> _CfgNodeBase:
    """Returns a copy of a full config of an older version, converted to ``to_version``.

    Args:
        cfg (CfgNode): a full config (every key of its version), e.g. from ``downgrade_config``.
        to_version (int | None): the target version. Defaults to None (the latest, 2).
    """
    cfg = cfg.clone()
    to_version = LATEST if to_version is None else to_version
    if cfg.VERSION > to_version:
        raise AssertionError(f"Cannot upgrade a v{cfg.VERSION} config to v{to_version}.")
    for version in range(cfg.VERSION + 1, to_version + 1):
        _upgrade_to(cfg, version)
        cfg.VERSION = version
    return cfg


def downgrade_config(cfg: _CfgNodeBase, to_version: int) -> _CfgNodeBase:
    """Returns a copy of a full config converted to the older version ``to_version``.

    Keys a version does not know (a user's own) are kept as they are, so downgrading and then
    upgrading gives back an equal config. The result is only meant to be upgraded again.
    """
    cfg = cfg.clone()
    if cfg.VERSION < to_version:
        raise AssertionError(f"Cannot downgrade a v{cfg.VERSION} config to v{to_version}.")
    for version in range(cfg.VERSION, to_version, -1):
        _downgrade_from(cfg, version)
        cfg.VERSION = version - 1
    return cfg


def guess_version(cfg: dict, filename: str) -> int:
    """The version of a partial config that does not say: 1 if it has v1-only keys, else latest."""

    def has(key: str) -> bool:
        node = cfg
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    if has("MODEL.WEIGHT") or has("TEST.AUG_ON"):
        logger.warning(f"Config '{filename}' has no VERSION; it has v1 keys, so it is read as v1.")
        return 1
    logger.debug(f"Config '{filename}' has no VERSION; read as the latest, v{LATEST}.")
    return LATEST
