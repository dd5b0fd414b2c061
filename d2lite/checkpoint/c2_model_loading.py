"""Rename ImageNet-pretrained ResNet weights to d2lite's parameter names.

Three naming schemes are read, each through an explicit, tested name map (no fuzzy matching):

- Caffe2 / MSRA (Detectron1 ``R-50.pkl``, ``R-101.pkl``, FAIR ``X-101-32x8d.pkl``):
  ``conv1_w``, ``res_conv1_bn_s``, ``res2_0_branch2a_w``, ``res2_0_branch1_bn_b``, ...
  These files fold the batch statistics into ``bn_s`` / ``bn_b``, so the missing running mean and
  variance are filled with 0 and 1. MSRA weights put the stride in the first 1x1 conv of each
  bottleneck (``MODEL.RESNETS.STRIDE_IN_1X1: True``) and expect BGR input in 0-255 with
  ``PIXEL_STD`` of 1.
- torchvision (``torchvision.models.resnet50().state_dict()``): ``conv1.weight``, ``bn1.*``,
  ``layer1.0.conv1.weight``, ``layer1.0.downsample.1.running_var``, ... torchvision puts the
  stride in the 3x3 conv, so use ``STRIDE_IN_1X1: False``, and it expects RGB input scaled to
  [0, 1] and normalised by the ImageNet mean/std (``INPUT.FORMAT: "RGB"``,
  ``PIXEL_MEAN: [123.675, 116.28, 103.53]``, ``PIXEL_STD: [58.395, 57.12, 57.375]``). The config
  is the caller's choice; nothing here changes it.
- Detectron2 names of a bare ResNet (``stem.conv1.weight``, ``res2.0.conv1.norm.weight``, as
  written by Detectron2's ``convert-torchvision-to-d2.py``).

After renaming, keys get the prefix under which the ResNet sits in the model (for example
``backbone.bottom_up.``). Classifier weights (``fc1000_*``, ``fc.*``) and solver state
(``*_momentum``) are dropped.

Checkpoints already in full model names pass through unchanged.

:func:`align_and_update_state_dicts` is Detectron2's suffix matching, which the checkpointer
applies where Detectron2 does (checkpoints flagged ``matching_heuristics``): each model key
takes the longest checkpoint key that is a whole dotted suffix of it, so ``layer1.weight``
loads into ``block1.layer1.weight``. Names that already are model names match themselves.
"""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch

__all__ = [
    "align_and_update_state_dicts",
    "convert_c2_detectron_names",
    "convert_to_model_names",
    "detect_weights_format",
]

logger = logging.getLogger(__name__)

_STEM_KEY = "stem.conv1.weight"
_C2_NORM_PARAM = {"s": "weight", "b": "bias", "rm": "running_mean", "riv": "running_var"}
_C2_BRANCH2_CONV = {"a": "conv1", "b": "conv2", "c": "conv3"}
_C2_STEM_NORM = re.compile(r"res_conv1_(?:bn|gn)_(s|b|rm|riv)")
_C2_BLOCK = re.compile(r"res(\d)_(\d+)_branch(1|2[abc])_(w|(?:bn|gn)_(?:s|b|rm|riv))")
_C2_DROPPED = re.compile(r"fc1000_[wb]|pred_.*|.*_momentum")
_TV_NORM_PARAM = r"(?:weight|bias|running_mean|running_var)"
_TV_STEM = re.compile(rf"conv1\.weight|bn1\.{_TV_NORM_PARAM}")
_TV_BLOCK = re.compile(
    rf"layer(\d)\.(\d+)\.(conv\d\.weight|bn\d\.{_TV_NORM_PARAM}|downsample\.0\.weight|"
    rf"downsample\.1\.{_TV_NORM_PARAM})"
)
_TV_DROPPED = re.compile(r"fc\..*|.*num_batches_tracked")
_D2_RESNET = re.compile(r"(stem|res\d)\..*")


def _caffe2_name(key: str) -> str | None:
    """The d2lite name of a Caffe2 blob, or None if the blob is not a ResNet weight."""
    if key == "conv1_w":
        return _STEM_KEY
    m = _C2_STEM_NORM.fullmatch(key)
    if m:
        return f"stem.conv1.norm.{_C2_NORM_PARAM[m[1]]}"
    m = _C2_BLOCK.fullmatch(key)
    if m is None:
        return None
    stage, block, branch, param = m.groups()
    module = "shortcut" if branch == "1" else _C2_BRANCH2_CONV[branch[1]]
    if param == "w":
        return f"res{stage}.{block}.{module}.weight"
    return f"res{stage}.{block}.{module}.norm.{_C2_NORM_PARAM[param.split('_')[1]]}"


def _torchvision_module(name: str) -> str:
    """A torchvision stem or block member in Detectron2's names: ``bn2.bias`` is
    ``conv2.norm.bias``, ``downsample.0``/``.1`` are ``shortcut``/``shortcut.norm``."""
    name = re.sub(r"^bn(\d)\.", r"conv\1.norm.", name)
    return name.replace("downsample.0.", "shortcut.").replace("downsample.1.", "shortcut.norm.")


def _torchvision_name(key: str) -> str | None:
    """The d2lite name of a torchvision ResNet parameter, or None if it is not a ResNet weight."""
    if _TV_STEM.fullmatch(key):
        return "stem." + _torchvision_module(key)
    m = _TV_BLOCK.fullmatch(key)
    if m is None:
        return None
    # torchvision's layer1..layer4 are Detectron2's res2..res5.
    return f"res{int(m[1]) + 1}.{m[2]}.{_torchvision_module(m[3])}"


def detect_weights_format(keys: Iterable[str]) -> str:
    """Returns "caffe2", "torchvision" or "detectron2" from the names in a state dict.

    Anything that is neither Caffe2 blobs nor a torchvision ResNet counts as "detectron2"
    (full model names, or a bare ResNet in Detectron2's names).
    """
    keys = set(keys)
    if "conv1_w" in keys or any(_C2_BLOCK.fullmatch(k) for k in keys):
        return "caffe2"
    if "conv1.weight" in keys and any(k.startswith("layer1.") for k in keys):
        return "torchvision"
    return "detectron2"


def _resnet_prefix(model_state_keys: set[str], fmt: str) -> str:
    """The unique P such that P + "stem.conv1.weight" is a model key."""
    prefixes = sorted(k[: -len(_STEM_KEY)] for k in model_state_keys if k.endswith(_STEM_KEY))
    prefixes = [p for p in prefixes if p == "" or p.endswith(".")]
    if len(prefixes) != 1:
        found = "no ResNet" if not prefixes else f"ResNets at {prefixes}"
        raise ValueError(
            f"The checkpoint holds bare ResNet weights ({fmt} names), but the model has {found}: "
            f"expected exactly one parameter named '<prefix>{_STEM_KEY}'."
        )
    return prefixes[0]


def _rename(state_dict: dict[str, Any], fmt: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Maps ``fmt`` names to bare d2lite ResNet names, dropping classifier and solver blobs.

    Returns:
        The renamed weights, and the original name of each new name.
    """
    to_name, dropped = {
        "caffe2": (_caffe2_name, _C2_DROPPED),
        "torchvision": (_torchvision_name, _TV_DROPPED),
    }[fmt]
    renamed, originals, unknown = {}, {}, []
    for key, value in state_dict.items():
        if dropped.fullmatch(key):
            continue
        new_key = to_name(key)
        if new_key is None:
            unknown.append(key)
            new_key = key
        renamed[new_key] = value
        originals[new_key] = key
    if unknown:
        logger.warning(
            f"{len(unknown)} {fmt} weights are not part of a ResNet and keep their names: "
            f"{unknown[:10]}{' ...' if len(unknown) > 10 else ''}"
        )
    return renamed, originals


def convert_c2_detectron_names(weights: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Renames the ResNet blobs of a Caffe2 checkpoint through the explicit Caffe2 name map.

    Detectron2's function of this name also renames Detectron1 head blobs by rules; d2lite
    renames only the ResNet (other blobs keep their names and load nowhere).

    Returns:
        The renamed weights, and the original Caffe2 name of each new name.
    """
    return _rename(weights, "caffe2")


def _fill_running_stats(state_dict: dict[str, Any], model_state_keys: set[str]) -> None:
    """Adds mean 0 / var 1 for norms the model tracks but the checkpoint folded away."""
    for key in [k for k in state_dict if k.endswith(".norm.weight")]:
        base = key[: -len("weight")]
        if base + "running_mean" not in model_state_keys:
            continue
        value = state_dict[key]
        lib = np if isinstance(value, np.ndarray) else torch
        state_dict.setdefault(base + "running_mean", lib.zeros_like(value))
        state_dict.setdefault(base + "running_var", lib.ones_like(value))


def _place(key: str, prefix: str, model_state_keys: set[str]) -> str:
    """The model name of a bare ResNet key: under ``prefix``, except res5 of a C4 model.

    C4 models (``Res5ROIHeads``) run res5 as the box head, at ``roi_heads.res5.*``.
    """
    if not _D2_RESNET.fullmatch(key):
        return key
    if key.startswith("res5.") and prefix + key not in model_state_keys:
        if "roi_heads." + key in model_state_keys:
            return "roi_heads." + key
    return prefix + key


def convert_to_model_names(
    state_dict: dict[str, torch.Tensor | np.ndarray], model_state_keys: Iterable[str]
) -> dict[str, torch.Tensor | np.ndarray]:
    """Renames a pretrained ResNet's weights to the names of the model that will load them.

    Args:
        state_dict (dict[str, Tensor | ndarray]): weights in Caffe2/MSRA, torchvision or
            Detectron2 names (see the module docstring); values are kept as they are.
        model_state_keys (Iterable[str]): ``model.state_dict().keys()`` of the target model.

    Returns:
        dict[str, Tensor | ndarray]: the same values under the model's names. Keys that match
        no ResNet weight keep their names (and show up as unexpected keys when loaded).

    Raises:
        ValueError: if the weights are a bare ResNet and the model has no ResNet, or several.
    """
    model_state_keys = set(model_state_keys)
    fmt = detect_weights_format(state_dict)
    if fmt == "detectron2":
        if _STEM_KEY not in state_dict or _STEM_KEY in model_state_keys:
            return dict(state_dict)
        # A bare Detectron2 ResNet: its classifier ("stem.fc" from convert-torchvision-to-d2,
        # "linear") has no place in a detector.
        renamed = {k: v for k, v in state_dict.items() if not k.startswith(("stem.fc.", "linear."))}
    else:
        renamed, _ = _rename(state_dict, fmt)
    prefix = _resnet_prefix(model_state_keys, fmt)
    converted = {_place(k, prefix, model_state_keys): v for k, v in renamed.items()}
    _fill_running_stats(converted, model_state_keys)
    logger.info(f"Renamed {len(converted)} {fmt} weights to the model's names (prefix {prefix!r})")
    return converted


def align_and_update_state_dicts(
    model_state_dict: Mapping[str, torch.Tensor],
    ckpt_state_dict: dict[str, Any],
    c2_conversion: bool = True,
) -> dict[str, Any]:
    """Detectron2's name matching: renames checkpoint keys to the model keys they end.

    Each model key takes the longest checkpoint key equal to it or ending it after a dot
    (``res2.conv1.weight`` ends ``backbone.res2.conv1.weight``; ``2.conv1.weight`` does not).
    A match with the wrong shape is not renamed.

    Args:
        model_state_dict (Mapping[str, Tensor]): the target model's state dict.
        ckpt_state_dict (dict[str, Tensor | ndarray]): the checkpoint's weights.
        c2_conversion (bool): first rename Caffe2 ResNet blobs with the explicit Caffe2 map.
            Defaults to True, as in Detectron2.

    Returns:
        dict: matched weights under model names, plus the unmatched ones under their own names;
        the checkpoint unchanged (after Caffe2 renaming) when nothing matched.

    Raises:
        ValueError: if one checkpoint key is the best match of two model keys.
    """
    if c2_conversion:
        ckpt_state_dict, originals = convert_c2_detectron_names(ckpt_state_dict)
    else:
        originals = {k: k for k in ckpt_state_dict}
    shapes = {k: tuple(v.shape) for k, v in model_state_dict.items()}
    matches = _longest_suffix_matches(shapes, set(ckpt_state_dict))
    result: dict[str, Any] = {}
    used: dict[str, str] = {}  # checkpoint key -> the model key it went to
    for model_key, ckpt_key in sorted(matches.items()):
        value = ckpt_state_dict[ckpt_key]
        if tuple(value.shape) != shapes[model_key]:
            if ckpt_key != model_key:  # same names: the loader's table reports the mismatch
                logger.warning(
                    f"{ckpt_key} of shape {tuple(value.shape)} in the checkpoint matches "
                    f"{model_key} of shape {shapes[model_key]} in the model; not loaded."
                )
            continue
        if ckpt_key in used:
            raise ValueError(
                f"Checkpoint key {ckpt_key!r} matches two model keys, {used[ckpt_key]!r} and "
                f"{model_key!r}; rename it in the checkpoint to say which one it is."
            )
        used[ckpt_key] = model_key
        result[model_key] = value
    if not used:
        logger.warning("No weights in the checkpoint matched the model's names.")
        return ckpt_state_dict
    _log_matches(used, originals, shapes)
    result.update({k: v for k, v in ckpt_state_dict.items() if k not in used})
    return result


def _longest_suffix_matches(model_keys: Iterable[str], ckpt_keys: set[str]) -> dict[str, str]:
    """Model key -> the longest checkpoint key that is a whole dotted suffix of it."""
    matches = {}
    for key in model_keys:
        parts = key.split(".")
        # Longest suffix first, so the first hit is the best one.
        for start in range(len(parts)):
            candidate = ".".join(parts[start:])
            if candidate in ckpt_keys:
                matches[key] = candidate
                break
    return matches


def _log_matches(used: dict[str, str], originals: dict[str, str], shapes: dict[str, tuple]) -> None:
    """Logs "model names <- checkpoint names" for the renamed keys, one line per module."""
    model_keys = sorted(m for c, m in used.items() if originals[c] != m)
    if not model_keys:
        return  # every match was an exact name: nothing to tell
    to_original = {model_key: originals[ckpt_key] for ckpt_key, model_key in used.items()}
    groups = _group_keys_by_module(model_keys, to_original)
    lines, done = [], set()
    for key in model_keys:
        if key in done:
            continue
        group = groups.get(key, [key])
        done.update(group)
        name = key if len(group) == 1 else _longest_common_prefix(group) + "*"
        originals_of_group = [to_original[k] for k in group]
        origin = originals_of_group[0] if len(group) == 1 else _group_str(originals_of_group)
        lines.append(f"  {name} <- {origin} {[shapes[k] for k in group]}")
    header = f"{len(model_keys)} weights renamed by name suffix (model <- checkpoint):"
    logger.info("\n".join([header, *lines]))


def _group_keys_by_module(keys: list[str], original_names: dict[str, str]) -> dict[str, list]:
    """Groups the keys of each module (with its submodules) whose original names share a prefix.

    Args:
        keys (list[str]): model parameter names.
        original_names (dict[str, str]): each key's name in the checkpoint.

    Returns:
        dict[str, list[str]]: key -> all keys of its group, for grouped keys only. A key in
        several modules goes to the outermost one.
    """
    modules = sorted({k[: k.rfind(".") + 1] for k in keys if "." in k}, key=len)
    groups: dict[str, list] = {}
    for module in modules:
        members = [k for k in keys if k.startswith(module)]
        if len(members) < 2 or not _longest_common_prefix_str([original_names[k] for k in members]):
            continue
        for k in members:
            groups.setdefault(k, members)
    return groups


def _longest_common_prefix(names: list[str]) -> str:
    """The common leading dotted components, with a trailing dot: ["a.b.c", "a.b.d"] -> "a.b."."""
    common = os.path.commonprefix([name.split(".") for name in names])
    return ".".join(common) + "." if common else ""


def _longest_common_prefix_str(names: list[str]) -> str:
    """The common leading characters: ["classA", "classB", "clab"] -> "cla"."""
    return os.path.commonprefix(names)


def _group_str(names: list[str]) -> str:
    """["conv1_w", "conv1_b"] -> "conv1_{w,b}"."""
    prefix = _longest_common_prefix_str(names)
    return prefix + "{" + ",".join(n[len(prefix) :] for n in names) + "}"
