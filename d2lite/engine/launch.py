"""``launch``: run a function in one process, or in one process per device with
``torch.distributed`` set up (NCCL on GPUs, Gloo on the CPU); also under ``torchrun``.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import tempfile
from datetime import timedelta
from typing import Any, Callable

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from d2lite.utils import comm

__all__ = ["DEFAULT_TIMEOUT", "launch"]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = timedelta(minutes=30)


def _snapshot_catalogs() -> tuple[dict, dict]:
    """Returns the picklable datasets and metadata registered in this process."""
    from d2lite.data.catalog import DatasetCatalog, MetadataCatalog

    datasets = {}
    for name, func in DatasetCatalog.items():
        try:
            pickle.dumps(func)
        except Exception as e:  # pickling a lambda or closure raises several error types
            logger.warning(
                "Dataset '%s' is registered with a function that cannot be sent to spawned "
                "workers (%s); register it with a module-level function or functools.partial, "
                "or the workers will not know it.",
                name,
                e,
            )
            continue
        datasets[name] = func
    metadata = {}
    for name in MetadataCatalog.list():
        values = MetadataCatalog.get(name).as_dict()
        try:
            pickle.dumps(values)
        except Exception as e:
            logger.warning("Metadata of '%s' cannot be sent to spawned workers: %s", name, e)
            continue
        metadata[name] = values
    return datasets, metadata


def _restore_catalogs(snapshot: tuple[dict, dict]) -> None:
    """Registers in a spawned worker what the launching process had registered."""
    from d2lite.data.catalog import DatasetCatalog, MetadataCatalog

    datasets, metadata = snapshot
    # The launching process wins over the worker's own import-time registrations: a script may
    # have re-pointed a built-in name (coco_trash_train) at its own files.
    for name, func in datasets.items():
        if name in DatasetCatalog:
            DatasetCatalog.remove(name)
        DatasetCatalog.register(name, func)
    for name, values in metadata.items():
        if name in MetadataCatalog:
            MetadataCatalog.remove(name)
        MetadataCatalog.get(name).set(**values)


def launch(
    main_func: Callable,
    num_gpus_per_machine: int,
    num_machines: int = 1,
    machine_rank: int = 0,
    dist_url: str | None = None,
    args: tuple = (),
    timeout: timedelta = DEFAULT_TIMEOUT,
) -> None:
    """Runs ``main_func(*args)`` in every process of a (possibly) distributed job.

    With a world size of 1 it is called directly. Otherwise ``num_gpus_per_machine`` processes
    are spawned on this machine; each joins the process group (NCCL with CUDA, else Gloo, so
    ``--num-gpus 2`` on a CPU machine runs 2 CPU processes) and gets the datasets and metadata
    registered here before the call. Under ``torchrun`` (``WORLD_SIZE``/``LOCAL_RANK`` set)
    the group is created from the environment and ``main_func`` is called directly.

    Args:
        main_func (Callable): a module-level function (spawned workers import it by name).
        num_gpus_per_machine (int): processes per machine.
        num_machines (int): machines in the job. Defaults to 1.
        machine_rank (int): rank of this machine. Defaults to 0.
        dist_url (str | None): "tcp://host:port", "file://..." or "auto" (a rendezvous file in
            a new temporary directory, single machine only). Defaults to None ("auto").
        args (tuple): arguments of ``main_func``. Defaults to ().
        timeout (timedelta): timeout of collective operations. Defaults to 30 minutes.
    """
    if _torchrun_world_size() > 1:
        _init_from_env(timeout)
        main_func(*args)
        return
    world_size = num_machines * num_gpus_per_machine
    if world_size <= 1:
        main_func(*args)
        return
    tmp_dir = None
    if dist_url is None or dist_url == "auto":
        if num_machines != 1:
            raise ValueError(
                'Multi-machine jobs need an explicit dist_url ("tcp://host:port"), not "auto".'
            )
        # A fresh file rather than a "free" TCP port: another process on a shared machine can
        # take the port between choosing and binding it; nobody else can take this file.
        tmp_dir = tempfile.mkdtemp(prefix="d2lite_dist_")
        dist_url = f"file://{os.path.join(tmp_dir, 'rendezvous')}"
    if num_machines > 1 and dist_url.startswith("file://"):
        logger.warning("file:// is not a reliable init_method in multi-machine jobs; use tcp://")
    try:
        _spawn(main_func, num_gpus_per_machine, world_size, machine_rank, dist_url, args, timeout)
    finally:
        if tmp_dir is not None:
            shutil.rmtree(tmp_dir, ignore_errors=True)


def _spawn(
    main_func: Callable,
    num_gpus_per_machine: int,
    world_size: int,
    machine_rank: int,
    dist_url: str,
    args: tuple,
    timeout: timedelta,
) -> None:
    """Starts this machine's workers and waits for them; a worker's exception is re-raised."""
    mp.start_processes(
        _distributed_worker,
        nprocs=num_gpus_per_machine,
        args=(
            main_func,
            world_size,
            num_gpus_per_machine,
            machine_rank,
            dist_url,
            args,
            timeout,
            _snapshot_catalogs(),
        ),
        daemon=False,
        start_method="spawn",
    )


def _torchrun_world_size() -> int:
    if "LOCAL_RANK" not in os.environ or dist.is_initialized():
        return 0
    return int(os.environ.get("WORLD_SIZE", "1"))


def _init_from_env(timeout: timedelta) -> None:
    has_gpu = torch.cuda.is_available()
    local_rank = int(os.environ["LOCAL_RANK"])
    if has_gpu:
        torch.cuda.set_device(local_rank)
    dist.init_process_group(
        backend="nccl" if has_gpu else "gloo", init_method="env://", timeout=timeout
    )
    comm.create_local_process_group(int(os.environ.get("LOCAL_WORLD_SIZE", comm.get_world_size())))
    comm.synchronize()


def _distributed_worker(
    local_rank: int,
    main_func: Callable,
    world_size: int,
    num_gpus_per_machine: int,
    machine_rank: int,
    dist_url: str,
    args: tuple,
    timeout: timedelta,
    catalogs: tuple[dict, dict],
) -> Any:
    has_gpu = torch.cuda.is_available()
    if has_gpu and num_gpus_per_machine > torch.cuda.device_count():
        raise ValueError(
            f"{num_gpus_per_machine} processes per machine requested, but only "
            f"{torch.cuda.device_count()} GPUs are visible."
        )
    global_rank = machine_rank * num_gpus_per_machine + local_rank
    try:
        dist.init_process_group(
            backend="nccl" if has_gpu else "gloo",
            init_method=dist_url,
            world_size=world_size,
            rank=global_rank,
            timeout=timeout,
        )
    except Exception as e:
        raise RuntimeError(f"Cannot join the process group at {dist_url}: {e}") from e
    comm.create_local_process_group(num_gpus_per_machine)
    if has_gpu:
        torch.cuda.set_device(local_rank)
    _restore_catalogs(catalogs)
    # Every process must be set up before any starts communicating.
    comm.synchronize()
    try:
        result = main_func(*args)
        # A rank that tears its group down while another still uses it can abort the job
        # (seen with Gloo: "terminate called without an active exception"); leave together.
        comm.synchronize()
        return result
    finally:
        comm.release_process_groups()
        dist.destroy_process_group()
