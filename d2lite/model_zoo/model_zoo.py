"""Configs shipped with d2lite, and the Detectron2 model-zoo checkpoints they correspond to."""
from __future__ import annotations

import difflib
import os
from pathlib import Path

from ..config import CfgNode, get_cfg

__all__ = ["get_config_file", "get_config", "get_checkpoint_url", "list_configs", "get"]

_D2_URL_PREFIX = "https://dl.fbaipublicfiles.com/detectron2/"

# Published Detectron2 checkpoints (config path without .yaml -> url suffix).
_CONFIG_PATH_TO_URL_SUFFIX = {
    "COCO-Detection/faster_rcnn_R_50_FPN_1x": "137257794/model_final_b275ba.pkl",
    "COCO-Detection/faster_rcnn_R_50_FPN_3x": "137849458/model_final_280758.pkl",
    "COCO-Detection/faster_rcnn_R_101_FPN_3x": "137851257/model_final_f6e8b1.pkl",
    "COCO-Detection/faster_rcnn_X_101_32x8d_FPN_3x": "139173657/model_final_68b088.pkl",
    "COCO-Detection/rpn_R_50_FPN_1x": "137258492/model_final_02ce48.pkl",
}


def _config_roots() -> list[Path]:
    pkg = Path(__file__).resolve().parent
    # Installed wheel: d2lite/model_zoo/configs; source checkout or editable install: ../model_zoo.
    return [p for p in (pkg / "configs", pkg.parent.parent / "model_zoo") if p.is_dir()]


def list_configs() -> list[str]:
    """Returns every shipped config path, relative to the model zoo root."""
    found = set()
    for root in _config_roots():
        found.update(str(p.relative_to(root)).replace(os.sep, "/") for p in root.rglob("*.yaml"))
    return sorted(found)


def get_config_file(config_path: str) -> str:
    """Returns the absolute path of a shipped config.

    Args:
        config_path (str): e.g. "COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml".

    Raises:
        RuntimeError: if no shipped config has that path; the message lists the nearest ones.
    """
    for root in _config_roots():
        candidate = root / config_path
        if candidate.is_file():
            return str(candidate)
    near = difflib.get_close_matches(config_path, list_configs(), n=5, cutoff=0.4)
    raise RuntimeError(
        f"{config_path} is not in the d2lite model zoo."
        + (f" Nearest: {', '.join(near)}." if near else f" Available: {', '.join(list_configs())}")
    )


def get_checkpoint_url(config_path: str) -> str:
    """Returns the URL of the Detectron2 model-zoo checkpoint trained with ``config_path``.

    Raises:
        RuntimeError: if Detectron2 published no checkpoint for that config.
    """
    name = config_path.replace(".yaml", "")
    if name not in _CONFIG_PATH_TO_URL_SUFFIX:
        raise RuntimeError(
            f"No published checkpoint for {config_path}. "
            f"Known: {', '.join(sorted(_CONFIG_PATH_TO_URL_SUFFIX))}"
        )
    return _D2_URL_PREFIX + name + "/" + _CONFIG_PATH_TO_URL_SUFFIX[name]


def get_config(config_path: str, trained: bool = False) -> CfgNode:
    """Returns the default config merged with a shipped config file.

    Args:
        config_path (str): path relative to the model zoo, e.g. "Base-RCNN-FPN.yaml".
        trained (bool): set MODEL.WEIGHTS to the published checkpoint. Defaults to False.
    """
    cfg = get_cfg()
    cfg.merge_from_file(get_config_file(config_path))
    if trained:
        cfg.MODEL.WEIGHTS = get_checkpoint_url(config_path)
    return cfg


def get(config_path: str, trained: bool = False, device: str | None = None):
    """Builds the model of a shipped config, with its published weights when ``trained``."""
    from ..checkpoint import DetectionCheckpointer
    from ..modeling import build_model

    cfg = get_config(config_path, trained)
    if device is not None:
        cfg.MODEL.DEVICE = device
    model = build_model(cfg)
    DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    return model
