"""The few distributed helpers the evaluators need, safe to call without a process group."""
from __future__ import annotations

from typing import Any

import torch.distributed as dist

__all__ = ["get_world_size", "is_main_process", "synchronize", "gather"]


def _initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_world_size() -> int:
    return dist.get_world_size() if _initialized() else 1


def is_main_process() -> bool:
    return not _initialized() or dist.get_rank() == 0


def synchronize() -> None:
    if _initialized() and dist.get_world_size() > 1:
        dist.barrier()


def gather(data: Any, dst: int = 0) -> list[Any]:
    """Collects ``data`` from every process on rank ``dst``.

    Returns:
        list: one entry per process on ``dst``; an empty list elsewhere.
    """
    if get_world_size() == 1:
        return [data]
    output = [None] * dist.get_world_size() if dist.get_rank() == dst else None
    dist.gather_object(data, output, dst=dst)
    return output if output is not None else []
