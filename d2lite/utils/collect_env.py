"""``collect_env_info()``: the versions and hardware a bug report needs."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys

import numpy as np
import torch
from tabulate import tabulate

__all__ = ["collect_env_info"]


def _version(dist_name: str) -> str:
    # Read from the installed metadata: importing torchvision & co. just for this is slow.
    try:
        return importlib.metadata.version(dist_name)
    except importlib.metadata.PackageNotFoundError:
        return "not found"


def _cuda_rows() -> list[tuple[str, str]]:
    if not torch.cuda.is_available():
        return [("GPU available", "No (CUDA " + str(torch.version.cuda) + " build)")]
    rows = [("GPU available", "Yes"), ("CUDA (torch build)", str(torch.version.cuda))]
    names: dict[str, list[str]] = {}
    for k in range(torch.cuda.device_count()):
        cap = ".".join(str(x) for x in torch.cuda.get_device_capability(k))
        names.setdefault(f"{torch.cuda.get_device_name(k)} (arch={cap})", []).append(str(k))
    rows += [(f"GPU {','.join(ids)}", name) for name, ids in names.items()]
    rows.append(("cuDNN", str(torch.backends.cudnn.version())))
    return rows


def collect_env_info() -> str:
    """Returns a two-column table of the software and hardware d2lite runs on."""
    import d2lite

    rows = [
        ("sys.platform", sys.platform),
        ("Platform", platform.platform()),
        ("Python", sys.version.replace("\n", "")),
        ("numpy", np.__version__),
        ("d2lite", f"{d2lite.__version__} @{os.path.dirname(d2lite.__file__)}"),
        ("PyTorch", f"{torch.__version__} @{os.path.dirname(torch.__file__)}"),
        ("torchvision", _version("torchvision")),
        ("fvcore", _version("fvcore")),
        ("iopath", _version("iopath")),
        ("pycocotools", _version("pycocotools")),
    ]
    rows += _cuda_rows()
    rows += [
        ("CPU threads (torch)", str(torch.get_num_threads())),
        ("CPU count", str(os.cpu_count())),
        ("CPU capability", torch.backends.cpu.get_cpu_capability()),
    ]
    # Dashed lines above and below, as Detectron2's collect_env prints it.
    return tabulate(rows, tablefmt="simple", disable_numparse=True)
