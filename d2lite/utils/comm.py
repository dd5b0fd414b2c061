"""Helpers for multi-process (DDP) training; every function also works in a single process.

Only the main process (rank 0) writes checkpoints, logs and metrics; the rest compute.
"""

from __future__ import annotations

import functools
import logging
import os
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

__all__ = [
    "get_world_size",
    "get_rank",
    "get_local_rank",
    "get_local_size",
    "is_main_process",
    "synchronize",
    "all_gather",
    "gather",
    "reduce_dict",
    "shared_random_seed",
    "create_local_process_group",
    "get_local_process_group",
    "release_process_groups",
]

logger = logging.getLogger(__name__)

# The group of the processes on this machine; get_local_rank/get_local_size answer from it.
_LOCAL_PROCESS_GROUP = None


def _is_dist() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_world_size() -> int:
    """Returns the number of processes, 1 outside distributed training."""
    return dist.get_world_size() if _is_dist() else 1


def get_rank() -> int:
    """Returns the global rank of this process, 0 outside distributed training."""
    return dist.get_rank() if _is_dist() else 0


@functools.lru_cache()
def create_local_process_group(num_workers_per_machine: int) -> None:
    """Creates the process group of the workers on this machine (called once by ``launch``).

    Args:
        num_workers_per_machine (int): processes per machine; must divide the world size.
    """
    global _LOCAL_PROCESS_GROUP
    world_size = get_world_size()
    if world_size % num_workers_per_machine != 0:
        raise ValueError(
            f"World size {world_size} is not a multiple of {num_workers_per_machine} workers "
            "per machine."
        )
    machine_rank = get_rank() // num_workers_per_machine
    # new_group must be called by every process for every group, in the same order.
    for i in range(world_size // num_workers_per_machine):
        ranks = list(range(i * num_workers_per_machine, (i + 1) * num_workers_per_machine))
        group = dist.new_group(ranks)
        if i == machine_rank:
            _LOCAL_PROCESS_GROUP = group


def release_process_groups() -> None:
    """Drops this module's references to process groups; ``launch`` calls it before
    ``destroy_process_group``, so every group is freed while the process is still running.

    A group still referenced at interpreter exit is torn down with the C++ runtime, and Gloo's
    threads can then abort the process ("terminate called without an active exception").
    """
    global _LOCAL_PROCESS_GROUP
    _LOCAL_PROCESS_GROUP = None
    create_local_process_group.cache_clear()
    _get_global_gloo_group.cache_clear()


def get_local_process_group():
    """Returns the process group of this machine's workers (None if not created)."""
    return _LOCAL_PROCESS_GROUP


def _local(query, env_var: str, fallback: int) -> int:
    """``query(group=local group)``; without one (started without launch()), what torchrun put
    in the environment."""
    if _LOCAL_PROCESS_GROUP is None:
        return int(os.environ.get(env_var, fallback))
    return query(group=_LOCAL_PROCESS_GROUP)


def get_local_rank() -> int:
    """Returns the rank of this process among the processes of its machine."""
    return _local(dist.get_rank, "LOCAL_RANK", get_rank()) if _is_dist() else 0


def get_local_size() -> int:
    """Returns the number of processes on this machine."""
    return _local(dist.get_world_size, "LOCAL_WORLD_SIZE", get_world_size()) if _is_dist() else 1


def is_main_process() -> bool:
    return get_rank() == 0


def synchronize() -> None:
    """Barrier among all processes; a no-op in a single process."""
    if get_world_size() == 1:
        return
    if dist.get_backend() == dist.Backend.NCCL and torch.cuda.is_available():
        # Without device_ids NCCL guesses the device and warns about possible hangs.
        dist.barrier(device_ids=[torch.cuda.current_device()])
    else:
        dist.barrier()


@functools.lru_cache()
def _get_global_gloo_group():
    """Returns a Gloo group over all ranks, so object collectives do not use GPU memory."""
    if dist.get_backend() == dist.Backend.NCCL:
        return dist.new_group(backend="gloo")
    return dist.group.WORLD


def _multi_process_group(group):
    """``group`` (by default a Gloo group over all ranks), or None if it has one process."""
    if get_world_size() == 1:
        return None
    group = _get_global_gloo_group() if group is None else group
    return group if dist.get_world_size(group) > 1 else None


def all_gather(data: Any, group=None) -> list[Any]:
    """Gathers a picklable object from every rank.

    Args:
        data: any picklable object.
        group: a process group. Defaults to a Gloo group over all ranks.

    Returns:
        list: the object of each rank, in rank order.
    """
    group = _multi_process_group(group)
    if group is None:
        return [data]
    output = [None] * dist.get_world_size(group)
    dist.all_gather_object(output, data, group=group)
    return output


def gather(data: Any, dst: int = 0, group=None) -> list[Any]:
    """Gathers a picklable object from every rank onto rank ``dst``.

    Returns:
        list: on rank ``dst`` the object of each rank in rank order; an empty list elsewhere.
    """
    group = _multi_process_group(group)
    if group is None:
        return [data]
    if dist.get_rank(group=group) == dst:
        output = [None] * dist.get_world_size(group)
        dist.gather_object(data, output, dst=dst, group=group)
        return output
    dist.gather_object(data, None, dst=dst, group=group)
    return []


def shared_random_seed() -> int:
    """Returns a random integer that is the same on every rank (rank 0's draw)."""
    ints = np.random.randint(2**31)
    return int(all_gather(ints)[0])


def reduce_dict(
    input_dict: dict[str, torch.Tensor], average: bool = True
) -> dict[str, torch.Tensor]:
    """Sums (or averages) scalar tensors over ranks; the result is meaningful on rank 0 only.

    Args:
        input_dict (dict[str, Tensor]): scalar tensors, the same keys on every rank.
        average (bool): divide the sum by the world size. Defaults to True.
    """
    world_size = get_world_size()
    if world_size < 2:
        return input_dict
    with torch.no_grad():
        # Sorted so every rank stacks the values in the same order.
        names = sorted(input_dict.keys())
        values = torch.stack([input_dict[k] for k in names], dim=0)
        dist.reduce(values, dst=0)
        if dist.get_rank() == 0 and average:
            values /= world_size
        return dict(zip(names, values))
