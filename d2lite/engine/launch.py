"""``launch``: run a function in one process, or in one process per device with
``torch.distributed`` set up (NCCL on GPUs, Gloo on the CPU); also under ``torchrun``.

A rank that raises writes its error into the job's store before it exits; a rank whose
collective then breaks ("Connection reset by peer", a timeout) raises an error that names the
failed rank and its error, or the ranks that reported nothing (killed, crashed or hung).
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import shutil
import tempfile
import time
from datetime import timedelta
from typing import Any, Callable, Iterable
from urllib.parse import urlparse

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from d2lite.utils import comm

__all__ = ["DEFAULT_TIMEOUT", "launch"]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = timedelta(minutes=30)

# How long a rank whose collective broke waits for the other ranks' reports. A rank that raised
# has reported before its exit broke the collective, so only a rank that cannot report
# (killed, hung) makes it wait this long.
_REPORT_WAIT_S = 1.0
# How long machine 0's launcher, which hosts the store, waits before it exits for the other
# ranks to read the report of a worker of its own that failed first.
_LINGER_S = 10.0
# How Gloo and NCCL say that a peer is gone or late: in plain RuntimeErrors, not DistErrors.
_BROKEN_COLLECTIVE = re.compile(r"gloo|nccl|connection|timed out|timeout|broken pipe", re.I)
_DIST_ERROR = getattr(dist, "DistError", ())  # torch >= 2.1


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
    """Registers in a spawned worker what the launching process had registered and it lacks."""
    from d2lite.data.catalog import DatasetCatalog, MetadataCatalog

    datasets, metadata = snapshot
    # Spawning re-runs the script's top level, so the worker may hold the same registrations
    # already; registering them again would fail, and they name the same files.
    for name, func in datasets.items():
        if name not in DatasetCatalog:
            DatasetCatalog.register(name, func)
    for name, values in metadata.items():
        known = MetadataCatalog.get(name).as_dict()
        MetadataCatalog.get(name).set(**{k: v for k, v in values.items() if k not in known})


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

    When a rank fails, the others do not wait for it forever: a rank that raises reports its
    error to the others, and a rank whose collective breaks (at once when a peer's process is
    gone, after ``timeout`` when a peer hangs) raises a RuntimeError naming the failed rank.

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
        _run_under_torchrun(main_func, args, num_machines * num_gpus_per_machine, timeout)
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
    store = None
    if dist_url.startswith("tcp://") and machine_rank == 0:
        # Machine 0's launcher hosts the job's store, not rank 0's process: the store then
        # outlives a failed rank 0, and the other ranks can still read its failure report.
        url = urlparse(dist_url)
        store = dist.TCPStore(
            url.hostname, url.port, is_master=True, timeout=timeout, wait_for_workers=False
        )
    try:
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
    except Exception:
        if store is not None:  # machine 0's workers are ranks 0 .. num_gpus_per_machine - 1
            _FailureReports(store, world_size).linger(local_ranks=range(num_gpus_per_machine))
        raise


def _torchrun_world_size() -> int:
    if "LOCAL_RANK" not in os.environ or dist.is_initialized():
        return 0
    return int(os.environ.get("WORLD_SIZE", "1"))


def _run_under_torchrun(
    main_func: Callable, args: tuple, requested_size: int, timeout: timedelta
) -> None:
    """Runs ``main_func(*args)`` in this process, one rank of torchrun's job."""
    world_size = _torchrun_world_size()
    if requested_size not in (1, world_size):
        logger.warning(
            "Under torchrun the job's size is torchrun's (WORLD_SIZE=%d); the %d processes "
            "asked of launch() are ignored.",
            world_size,
            requested_size,
        )
    _run_in_group(
        main_func,
        args,
        init_method="env://",
        rank=-1,  # RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT come from the environment
        world_size=-1,
        local_rank=int(os.environ["LOCAL_RANK"]),
        local_size=int(os.environ.get("LOCAL_WORLD_SIZE", world_size)),
        timeout=timeout,
    )


class _FailureReports:
    """The errors of failed ranks, kept in the job's store under
    ``d2lite_failures/<restart>/<rank>``: "failed: <error>" for a rank's own error, "broken:
    <error>" for a broken collective (posted once the rank has read the others' reports).

    Args:
        store (dist.Store): the store every rank of the job reaches.
        world_size (int): the number of ranks.
    """

    def __init__(self, store: dist.Store, world_size: int) -> None:
        # torchrun keeps its store across restarts; the reports of a failed round stay there.
        restart = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        self._store = dist.PrefixStore(f"d2lite_failures/{restart}", store)
        self.world_size = world_size

    def read(self, ranks: Iterable[int]) -> dict[int, str]:
        """Returns the reports of those of ``ranks`` that have posted one."""
        posted = [r for r in ranks if self._store.check([str(r)])]
        return {r: self._store.get(str(r)).decode() for r in posted}

    def post(self, rank: int, kind: str, error: BaseException) -> None:
        try:
            self._store.set(str(rank), f"{kind}: {type(error).__name__}: {error}"[:4000])
        except Exception as e:  # the store died with its host; the others will say so
            logger.warning("Rank %d cannot report its failure to the others: %s", rank, e)

    def explain(self, rank: int) -> str:
        """Says which ranks other than ``rank`` failed and how, waiting up to
        ``_REPORT_WAIT_S`` for a rank that failed first to have reported."""
        others = [r for r in range(self.world_size) if r != rank]
        deadline = time.monotonic() + _REPORT_WAIT_S
        try:
            reports = self.read(others)
            while len(reports) < len(others) and time.monotonic() < deadline:
                if any(v.startswith("failed") for v in reports.values()):
                    break
                time.sleep(0.1)
                reports = self.read(others)
        except Exception as e:
            return (
                f"The other ranks' reports cannot be read ({e}): the process that hosts the "
                "job's store (machine 0's launch() with tcp://, torchrun's agent) is gone."
            )
        failed = {r: v.split(": ", 1)[1] for r, v in reports.items() if v.startswith("failed")}
        if failed:
            return " ".join(f"Rank {r} failed first: {error}." for r, error in failed.items())
        silent = [r for r in others if r not in reports]
        if silent:
            return (
                f"Rank(s) {silent} reported no error within {_REPORT_WAIT_S:g} s: killed (e.g. "
                "out of memory), crashed or hanging; see their logs."
            )
        return "The other ranks saw broken collectives too; no rank reported its own error."

    def linger(self, local_ranks: Iterable[int]) -> None:
        """When one of ``local_ranks`` failed first, waits (up to ``_LINGER_S``) until the
        other ranks have posted, i.e. read its report, before the store's host exits."""
        local_ranks = set(local_ranks)
        if not any(v.startswith("failed") for v in self.read(local_ranks).values()):
            return
        remote = [r for r in range(self.world_size) if r not in local_ranks]
        deadline = time.monotonic() + _LINGER_S
        while len(self.read(remote)) < len(remote) and time.monotonic() < deadline:
            time.sleep(0.1)


def _run_reporting_failures(
    main_func: Callable, args: tuple, reports: _FailureReports, rank: int
) -> Any:
    """Calls ``main_func(*args)`` and waits for every rank to finish; a failure is reported to
    the other ranks, and a broken collective raises an error that names the rank that failed."""
    try:
        result = main_func(*args)
        # A rank that tears its group down while another still uses it can abort the job
        # (seen with Gloo: "terminate called without an active exception"); leave together.
        comm.synchronize()
        return result
    except Exception as e:
        header = f"Rank {rank} of {reports.world_size}"
        if not _is_broken_communication(e):
            reports.post(rank, "failed", e)
            logger.error("%s failed: %s: %s", header, type(e).__name__, e)
            raise
        explanation = reports.explain(rank)
        reports.post(rank, "broken", e)
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise RuntimeError(
            f"{header}: communication with the other ranks failed ({first_line}). {explanation}"
        ) from e


def _is_broken_communication(error: Exception) -> bool:
    """Whether ``error`` is a collective or store operation that failed (a peer gone or late),
    rather than an error of this rank's own."""
    if isinstance(error, _DIST_ERROR):
        return True
    return isinstance(error, RuntimeError) and bool(_BROKEN_COLLECTIVE.search(str(error)))


def _connect(
    init_method: str, rank: int, world_size: int, timeout: timedelta
) -> tuple[dist.Store, int, int]:
    """Returns the job's store, this process's rank and the world size: what
    ``init_process_group(init_method=...)`` makes, kept here for the failure reports."""
    if init_method.startswith("tcp://"):
        url = urlparse(init_method)  # the store of machine 0's launcher (see _spawn)
        return dist.TCPStore(url.hostname, url.port, timeout=timeout), rank, world_size
    store, rank, world_size = next(dist.rendezvous(init_method, rank, world_size, timeout=timeout))
    store.set_timeout(timeout)
    return store, rank, world_size


def _run_in_group(
    main_func: Callable,
    args: tuple,
    *,
    init_method: str,
    rank: int,
    world_size: int,
    local_rank: int,
    local_size: int,
    timeout: timedelta,
    catalogs: tuple[dict, dict] | None = None,
) -> Any:
    """Joins the process group (``rank`` and ``world_size`` -1: read from the environment),
    calls ``main_func(*args)`` and leaves the group."""
    has_gpu = torch.cuda.is_available()
    if has_gpu:
        torch.cuda.set_device(local_rank)
    try:
        store, rank, world_size = _connect(init_method, rank, world_size, timeout)
        dist.init_process_group(
            backend="nccl" if has_gpu else "gloo",
            store=dist.PrefixStore("default_pg", store),
            rank=rank,
            world_size=world_size,
            timeout=timeout,
        )
    except Exception as e:
        raise RuntimeError(f"Cannot join the process group at {init_method}: {e}") from e
    try:
        comm.create_local_process_group(local_size)
        if catalogs is not None:
            _restore_catalogs(catalogs)
        # Every process must be set up before any starts communicating.
        comm.synchronize()
        return _run_reporting_failures(main_func, args, _FailureReports(store, world_size), rank)
    finally:
        comm.release_process_groups()
        dist.destroy_process_group()


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
    if torch.cuda.is_available() and num_gpus_per_machine > torch.cuda.device_count():
        raise ValueError(
            f"{num_gpus_per_machine} processes per machine requested, but only "
            f"{torch.cuda.device_count()} GPUs are visible."
        )
    return _run_in_group(
        main_func,
        args,
        init_method=dist_url,
        rank=machine_rank * num_gpus_per_machine + local_rank,
        world_size=world_size,
        local_rank=local_rank,
        local_size=num_gpus_per_machine,
        timeout=timeout,
        catalogs=catalogs,
    )
