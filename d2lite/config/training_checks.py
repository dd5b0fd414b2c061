"""Checks of what MODEL.WEIGHTS implies for the rest of the config, run before anything is built.

Detectron2's defaults suit one case: fine-tuning the Caffe2/MSRA ImageNet ResNets (BGR inputs,
std 1, stride in the 1x1 conv, frozen BN, frozen stem and res2). Two other starts are common,
and with the defaults both train silently wrong:

* No weights (``MODEL.WEIGHTS: ""``). A freshly built ``FrozenBN`` is the identity and stays so
  (nothing trains it), and ``FREEZE_AT`` keeps random stages random. :func:`check_from_scratch`
  warns and names the settings that train from scratch; :func:`from_scratch_overrides` returns
  them for ``train_net.py --from-scratch``.
* torchvision ImageNet weights (a ``.pth`` with ``conv1.weight``, ``layer1.0.conv1.weight``...).
  :func:`check_weights_settings` sets RGB input, ImageNet's mean and std, and the stride in the
  3x3 conv, with one message naming each change. Caffe2/Detectron2 ``.pkl`` files (MSRA's
  ``R-50.pkl``) and URLs are left alone: the defaults are made for the former.

The model and the data loader read these keys when they are built, so callers run
:func:`check_training_settings` on the config first: ``DefaultTrainer`` and the training tools
(``DefaultPredictor`` and the inference tools run :func:`check_weights_settings`). Detectron2
checks none of this; d2lite only warns, or sets what was left at Detectron2's defaults, and
never refuses a config.
"""

from __future__ import annotations

import logging
from functools import reduce
from typing import Any

from d2lite.checkpoint.weights_settings import (
    TORCHVISION_SETTINGS,
    peek_weights_format,
    same_setting,
)
from d2lite.utils import comm
from d2lite.utils.logger import log_first_n

from .config import CfgNode

__all__ = [
    "RESNET_BACKBONES",
    "check_from_scratch",
    "check_training_settings",
    "check_weights_settings",
    "from_scratch_overrides",
]

logger = logging.getLogger(__name__)

# Built-in backbones made of d2lite's ResNet, whose NORM and FREEZE_AT keys are checked; the
# tiny test backbone and users' own backbones read other keys.
RESNET_BACKBONES = ("build_resnet_backbone", "build_resnet_fpn_backbone")
_FPN_BACKBONES = RESNET_BACKBONES[1:]

# Values that mean "left at Detectron2's defaults" rather than chosen: set for torchvision
# weights. The ImageNet mean/std in BGR order (the default mean is one) are torchvision's own
# statistics for a BGR model, so they follow INPUT.FORMAT to RGB.
_NOT_CHOSEN: dict[str, tuple] = {
    "INPUT.FORMAT": ("BGR",),
    "MODEL.PIXEL_MEAN": ([103.53, 116.28, 123.675],),
    "MODEL.PIXEL_STD": ([1.0, 1.0, 1.0], [57.375, 57.12, 58.395]),
    "MODEL.RESNETS.STRIDE_IN_1X1": (True,),
}

# BN's error grows as the images per device drop below 16 (GroupNorm, Wu & He 2018).
_MIN_IMAGES_PER_DEVICE_FOR_BN = 16
_GN_GROUPS = 32


def _get(cfg: CfgNode, key: str) -> Any:
    return reduce(getattr, key.split("."), cfg)


def _opt(value: Any) -> str:
    """A value as ``merge_from_list`` and the command line take it: GN, False, [1.0, 2.0]."""
    if isinstance(value, str):
        return value
    return str(list(value) if isinstance(value, tuple) else value)


def _command_line(overrides: list[str]) -> str:
    """``["MODEL.WEIGHTS", "", "A", "1"]`` -> ``MODEL.WEIGHTS '' A 1``."""
    return " ".join(x if x else "''" for x in overrides)


def _show(value: Any) -> str:
    return repr(list(value) if isinstance(value, tuple) else value)


def _merge(cfg: CfgNode, overrides: list[str]) -> None:
    """``cfg.merge_from_list(overrides)``, on a frozen config too (it is frozen again after)."""
    frozen = cfg.is_frozen()
    cfg.defrost()
    try:
        cfg.merge_from_list(overrides)
    finally:
        if frozen:
            cfg.freeze()


def _needed_for_torchvision(cfg: CfgNode) -> dict[str, Any]:
    """The settings torchvision weights need, less STRIDE_IN_1X1 where there is no bottleneck."""
    needed = dict(TORCHVISION_SETTINGS)
    if cfg.MODEL.RESNETS.DEPTH < 50:
        # ResNet-18/34 blocks have no 1x1 conv; the key does nothing there.
        del needed["MODEL.RESNETS.STRIDE_IN_1X1"]
    return needed


def _report_torchvision(
    path: str, changed: list[tuple[str, Any, Any]], kept: list[tuple[str, Any, Any]]
) -> None:
    """One warning: what was changed for torchvision weights, and what was kept though wrong."""
    parts = [
        f"MODEL.WEIGHTS {path} holds torchvision ResNet weights, trained on RGB images "
        "normalised by ImageNet's mean and std, with each bottleneck's stride in its 3x3 conv "
        "(Detectron2's defaults are for the Caffe2/MSRA weights: BGR, std 1, stride in the 1x1)."
    ]
    if changed:
        changes = "; ".join(f"{k} {_show(old)} -> {_show(new)}" for k, old, new in changed)
        parts.append(f"Changed for these weights: {changes}.")
    if kept:
        kept_text = "; ".join(
            f"{k} {_show(old)} (the weights need {_show(new)})" for k, old, new in kept
        )
        parts.append(f"Kept as set, though the weights expect otherwise: {kept_text}.")
    if changed:
        parts.append("Write the changed values into the config file to make this message go away.")
    message = " ".join(parts)
    if changed:
        logger.warning(message)
    else:
        # Nothing changed, so a second check (the tool's, then the trainer's) would repeat it.
        log_first_n(logging.WARNING, message, name=__name__, key="message")


def check_weights_settings(cfg: CfgNode) -> list[str]:
    """Sets the input and stride settings that torchvision ResNet weights in MODEL.WEIGHTS need.

    For a local torch file holding torchvision's names (read cheaply, see
    ``read_weight_names``), ``INPUT.FORMAT``, ``MODEL.PIXEL_MEAN``, ``MODEL.PIXEL_STD`` and (for
    ResNet-50 and deeper) ``MODEL.RESNETS.STRIDE_IN_1X1`` get torchvision's values, in place,
    with one warning naming each change. Only values left at Detectron2's defaults (or the
    ImageNet mean/std in BGR order) are changed: those were made for the Caffe2 weights, not
    chosen for these. A value the user set to something else (a dataset's own pixel
    statistics) is kept and named in the same warning with the value the weights need: d2lite
    warns rather than overriding what the user wrote. Running it again changes nothing.

    Left alone: d2lite/Detectron2 checkpoints (full model names), Caffe2 and Detectron2
    ``.pkl`` files (the defaults are theirs), URLs and ``detectron2://`` paths (nothing is
    downloaded here; the checkpointer warns at load time if such weights are torchvision's).

    Args:
        cfg (CfgNode): the config, frozen or not; it is frozen again if it was.

    Returns:
        list[str]: the ``KEY VALUE`` pairs applied (as for ``cfg.merge_from_list``); [] if none.
    """
    path = cfg.MODEL.WEIGHTS
    if peek_weights_format(path) != "torchvision":
        return []
    changed, kept = [], []
    for key, needed in _needed_for_torchvision(cfg).items():
        current = _get(cfg, key)
        if same_setting(current, needed):
            continue
        not_chosen = any(same_setting(current, v) for v in _NOT_CHOSEN[key])
        (changed if not_chosen else kept).append((key, current, needed))
    overrides = [item for key, _, needed in changed for item in (key, _opt(needed))]
    if overrides:
        _merge(cfg, overrides)
    if changed or kept:
        _report_torchvision(path, changed, kept)
    return overrides


def _from_scratch_norm(cfg: CfgNode) -> str:
    """BN when every device gets enough images for batch statistics, else GN."""
    images_per_device = cfg.SOLVER.IMS_PER_BATCH // max(comm.get_world_size(), 1)
    return "BN" if images_per_device >= _MIN_IMAGES_PER_DEVICE_FOR_BN else "GN"


def _scratch_overrides(cfg: CfgNode) -> list[str]:
    """The KEY VALUE pairs of :func:`from_scratch_overrides`, without its log line."""
    overrides: list[str] = []
    if cfg.MODEL.WEIGHTS.strip():
        overrides += ["MODEL.WEIGHTS", ""]
    if cfg.MODEL.BACKBONE.NAME not in RESNET_BACKBONES:
        return overrides
    if cfg.MODEL.RESNETS.NORM == "FrozenBN":
        overrides += ["MODEL.RESNETS.NORM", _from_scratch_norm(cfg)]
    fpn = cfg.MODEL.FPN
    # GroupNorm needs the channels in whole groups; other widths keep the FPN as it is.
    is_fpn = cfg.MODEL.BACKBONE.NAME in _FPN_BACKBONES
    if is_fpn and not fpn.NORM and fpn.OUT_CHANNELS % _GN_GROUPS == 0:
        overrides += ["MODEL.FPN.NORM", "GN"]
    if cfg.MODEL.BACKBONE.FREEZE_AT != 0:
        overrides += ["MODEL.BACKBONE.FREEZE_AT", "0"]
    return overrides


def from_scratch_overrides(cfg: CfgNode) -> list[str]:
    """The ``KEY VALUE`` pairs that make ``cfg`` train its ResNet from random weights.

    What ``train_net.py --from-scratch`` merges: no ``MODEL.WEIGHTS``; a norm that learns in
    place of ``FrozenBN`` (GN, or BN when each device gets at least 16 images; GN's channels
    come in groups of 32); GN in the FPN where it has none; ``FREEZE_AT`` 0. Settings already
    fit for training from scratch are left as they are, so applying the result twice is
    applying it once. The schedule is not changed (that is the user's budget): from scratch
    takes about 3x the iterations of fine-tuning (Detectron2's scratch configs run 3x to 9x,
    after "Rethinking ImageNet Pre-training", He et al. 2019), as the INFO line it logs says.

    Args:
        cfg (CfgNode): the config, not changed.

    Returns:
        list[str]: e.g. ``["MODEL.WEIGHTS", "", "MODEL.RESNETS.NORM", "GN", ...]``.
    """
    overrides = _scratch_overrides(cfg)
    logger.info(
        f"Training from scratch: {_command_line(overrides) or 'nothing to change'}. "
        f"SOLVER.MAX_ITER stays {cfg.SOLVER.MAX_ITER}: from random weights, train about 3x "
        "longer than a fine-tuning schedule (SOLVER.MAX_ITER and SOLVER.STEPS)."
    )
    return overrides


def _frozen_stages(freeze_at: int) -> str:
    """1 -> "the stem", 3 -> "the stem, res2 and res3"."""
    stages = ["the stem"] + [f"res{i}" for i in range(2, min(freeze_at, 5) + 1)]
    return stages[0] if len(stages) == 1 else ", ".join(stages[:-1]) + " and " + stages[-1]


def check_from_scratch(cfg: CfgNode) -> list[str]:
    """Warns when a ResNet starts from random weights with settings made for pretrained ones.

    With ``MODEL.WEIGHTS`` empty, a ``FrozenBN`` layer stays the identity it is built as
    (nothing trains its scale, shift or statistics), and the stages ``FREEZE_AT`` freezes keep
    their random weights. The warning names the settings that train from scratch (see
    :func:`from_scratch_overrides`). Only the built-in ResNet backbones are checked. A warning
    is given once per process (the training tool checks, then the trainer checks again).

    Args:
        cfg (CfgNode): the config, not changed.

    Returns:
        list[str]: the problems found, [] when there are none.
    """
    if cfg.MODEL.WEIGHTS.strip() or cfg.MODEL.BACKBONE.NAME not in RESNET_BACKBONES:
        return []
    problems = []
    if cfg.MODEL.RESNETS.NORM == "FrozenBN":
        problems.append(
            "MODEL.RESNETS.NORM is FrozenBN, which without pretrained statistics stays the "
            "identity (scale 1, shift 0, mean 0, variance 1) for the whole run, so the ResNet "
            "trains without normalisation"
        )
    freeze_at = cfg.MODEL.BACKBONE.FREEZE_AT
    if freeze_at > 0:
        problems.append(
            f"MODEL.BACKBONE.FREEZE_AT is {freeze_at}, so these frozen stages never learn and "
            f"keep their random initial weights: {_frozen_stages(freeze_at)}"
        )
    if problems:
        message = _from_scratch_message(cfg, problems)
        log_first_n(logging.WARNING, message, name=__name__, key="message")
    return problems


def _from_scratch_message(cfg: CfgNode, problems: list[str]) -> str:
    overrides = _scratch_overrides(cfg)
    norm = ""
    if "MODEL.RESNETS.NORM" in overrides:
        norm = " (BN needs 16 or more images per device; GN works with any; SyncBN pools devices)"
    return (
        "MODEL.WEIGHTS is empty, so nothing is pretrained and the ResNet starts from random "
        f"weights, but {'; and '.join(problems)}. To train from scratch, set "
        f"{_command_line(overrides)}{norm} and train about 3x longer than a fine-tuning "
        "schedule (SOLVER.MAX_ITER, SOLVER.STEPS); train_net.py --from-scratch sets all but the "
        "schedule. To fine-tune instead, set MODEL.WEIGHTS to pretrained weights (e.g. "
        "detectron2://ImageNetPretrained/MSRA/R-50.pkl)."
    )


def check_training_settings(cfg: CfgNode) -> list[str]:
    """Runs :func:`check_from_scratch` and :func:`check_weights_settings` on a training config.

    Call it before the model and the data loaders are built (they read the keys it sets).

    Args:
        cfg (CfgNode): the config, adjusted in place (frozen again if it was frozen).

    Returns:
        list[str]: the ``KEY VALUE`` pairs applied; [] if none.
    """
    check_from_scratch(cfg)
    return check_weights_settings(cfg)
