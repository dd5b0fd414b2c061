"""What a weights file says about the config it needs, read before the model is built.

torchvision's ImageNet ResNets (``conv1.weight``, ``layer1.0.conv1.weight``, ``bn1.*``,
``fc.weight``) were trained on RGB images scaled to [0, 1] and normalised by ImageNet's mean
and std, with the stride of each bottleneck in its 3x3 conv. Detectron2's defaults are those of
the Caffe2/MSRA weights instead (BGR, std 1, the stride in the first 1x1 conv). Loading
torchvision weights into a model built with the defaults succeeds, every shape matching, and
then trains on wrongly scaled, channel-swapped inputs through misplaced strides.

* :data:`TORCHVISION_SETTINGS` lists the settings those weights need.
* :func:`read_weight_names` lists the names in a local torch file without reading its tensors,
  and :func:`peek_weights_format` says whose names they are, so that the config can be
  adjusted before anything is built (``d2lite.config.training_checks``).
* :func:`torchvision_mismatches` names what a built model has that torchvision weights do not
  expect; the checkpointer warns with it when such weights reach a model anyway (a URL, which
  is not downloaded to be peeked at, or a script that built the model from an unchecked config).
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import zipfile
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn

from .c2_model_loading import detect_weights_format

__all__ = [
    "TORCHVISION_SETTINGS",
    "peek_weights_format",
    "read_weight_names",
    "same_setting",
    "torchvision_mismatches",
    "warn_torchvision_mismatches",
]

logger = logging.getLogger(__name__)

# torchvision's ImageNet normalisation, ToTensor's [0, 1] scale folded in (x 255), RGB order.
TORCHVISION_SETTINGS: dict[str, Any] = {
    "INPUT.FORMAT": "RGB",
    "MODEL.PIXEL_MEAN": [123.675, 116.28, 103.53],
    "MODEL.PIXEL_STD": [58.395, 57.12, 57.375],
    "MODEL.RESNETS.STRIDE_IN_1X1": False,
}


def same_setting(a: Any, b: Any) -> bool:
    """Whether two config values are equal, numbers in lists up to the 3 decimals people type."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(math.isclose(x, y, abs_tol=1e-3) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def _local_file(path: str) -> str | None:
    """``path`` without a ``?matching_heuristics=...`` query, or None if it is not a local file."""
    if not path or "://" in path:
        return None  # a URL or detectron2://...: peeking would mean downloading it
    local = urlparse(path)._replace(query="").geturl() if "?" in path else path
    return local if os.path.isfile(local) else None


def read_weight_names(path: str) -> list[str] | None:
    """The names of the weights in a local torch file, read without its tensors' data.

    A zip file (torch >= 1.6) is memory-mapped, so only its pickled structure is read (about
    20 ms for a ResNet-50); a legacy file is read whole. Both with ``weights_only=True``. A
    training checkpoint ``{"model": state_dict, ...}`` gives its model's names.

    Args:
        path (str): MODEL.WEIGHTS, possibly with a ``?matching_heuristics=True`` suffix.

    Returns:
        list[str] | None: the names; None for a ``.pkl`` (Detectron2 and Caffe2 pickles, for
        which Detectron2's defaults were made), a URL or ``detectron2://`` path (not downloaded), a missing
        or unreadable file (the checkpointer reports those when it loads them).
    """
    local = _local_file(path)
    if local is None or local.endswith(".pkl"):
        return None
    try:
        data = torch.load(
            local, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(local)
        )
    except (RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError) as e:
        logger.debug(f"Could not read the weight names of {local}: {e}")
        return None
    if isinstance(data, dict) and isinstance(data.get("model"), dict):
        data = data["model"]
    if not isinstance(data, dict):
        return None
    return [k for k in data if isinstance(k, str)]


def peek_weights_format(path: str) -> str | None:
    """Whose names ``path`` holds: "torchvision", "caffe2" or "detectron2"; None if unread.

    See :func:`read_weight_names` for which paths are read.
    """
    names = read_weight_names(path)
    return None if names is None else detect_weights_format(names)


def _stride_in_1x1(module: nn.Module) -> bool:
    """Whether ``module`` is a downsampling bottleneck whose stride is in its first 1x1 conv."""
    if getattr(module, "stride", 1) == 1 or not hasattr(module, "conv3"):
        return False
    return tuple(getattr(module.conv1, "stride", (1, 1))) != (1, 1)


def _as_list(value: torch.Tensor) -> list[float]:
    return [round(x, 3) for x in value.flatten().tolist()]


def torchvision_mismatches(model: nn.Module) -> list[str]:
    """The settings of a built model that torchvision ResNet weights do not expect.

    Reads what the model keeps of its config: ``input_format``, the ``pixel_mean`` and
    ``pixel_std`` buffers, and where each downsampling bottleneck has its stride.

    Args:
        model (nn.Module): e.g. a ``GeneralizedRCNN``, unwrapped.

    Returns:
        list[str]: "KEY value" for each setting that differs, e.g. "INPUT.FORMAT 'BGR'".
    """
    found = []
    input_format = getattr(model, "input_format", None)
    if isinstance(input_format, str) and input_format != TORCHVISION_SETTINGS["INPUT.FORMAT"]:
        found.append(f"INPUT.FORMAT {input_format!r}")
    for key, attr in (("MODEL.PIXEL_MEAN", "pixel_mean"), ("MODEL.PIXEL_STD", "pixel_std")):
        value = getattr(model, attr, None)
        if isinstance(value, torch.Tensor) and not same_setting(
            _as_list(value), TORCHVISION_SETTINGS[key]
        ):
            found.append(f"{key} {_as_list(value)}")
    if any(_stride_in_1x1(m) for m in model.modules()):
        found.append("MODEL.RESNETS.STRIDE_IN_1X1 True")
    return found



def warn_torchvision_mismatches(model: nn.Module, weights: dict[str, Any], path: str) -> bool:
    """Warns if torchvision weights are about to load into a model built for other settings.

    ``check_weights_settings`` sets these before the model is built; this catches what it
    cannot see (a URL, or a model built from a config it never checked).

    Args:
        model (nn.Module): the model the weights load into.
        weights (dict[str, Any]): the weights under their names in the file.
        path (str): the file, for the message.

    Returns:
        bool: whether it warned.
    """
    if detect_weights_format(weights) != "torchvision":
        return False
    mismatches = torchvision_mismatches(model)
    if mismatches:
        needed = ", ".join(f"{k} {v!r}" for k, v in TORCHVISION_SETTINGS.items())
        logger.warning(
            f"{path} holds torchvision ResNet weights, but the model was built with "
            f"{', '.join(mismatches)}: it will see inputs and strides the weights were not "
            f"trained with. Build it from a config passed through d2lite.config."
            f"training_checks.check_weights_settings(cfg), or set {needed}."
        )
    return bool(mismatches)
