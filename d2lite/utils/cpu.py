"""The CPUs a process may really use, and OpenMP settings that hold up on a shared machine.

torch sizes its thread pool from the cores it sees, which in a container is the host's count
(a pod limited to 2 CPUs on a 64-core node runs 64 threads that the quota then stalls), and
OpenMP's worker threads spin at every barrier by default, which on contended cores can wait for
a descheduled thread for a whole time slice. Both are decided when the OpenMP runtime starts,
that is when torch is first imported; ``import d2lite`` applies :func:`prefer_passive_openmp`
before it imports torch and :func:`limit_threads_to_usable_cpus` after.
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterator

__all__ = [
    "cgroup_cpu_quota",
    "limit_threads_to_usable_cpus",
    "openmp_started",
    "prefer_passive_openmp",
    "usable_cpus",
]

# Whether prefer_passive_openmp set OMP_WAIT_POLICY (the user's environment did not).
PASSIVE_SET_BY_D2LITE = False

_CGROUP_ROOT = "/sys/fs/cgroup"
# Variables by which a user (or a launcher) chose the thread count.
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _ancestors(path: str) -> list[str]:
    """'/a/b' -> ['/a/b', '/a', '/']: a quota set on a parent group limits its children."""
    parts = [p for p in path.split("/") if p]
    return ["/" + "/".join(parts[:i]) for i in range(len(parts), -1, -1)]


def _limits_v2(root: str, group: str) -> Iterator[float]:
    for path in _ancestors(group):
        text = _read(os.path.join(root, path.lstrip("/"), "cpu.max"))
        if text and not text.startswith("max"):
            quota, period = text.split()[:2]
            yield int(quota) / int(period)


def _limits_v1(root: str, controllers: str, group: str) -> Iterator[float]:
    for path in _ancestors(group):
        # Inside a container the group's own folder is usually the mounted root itself.
        bases = {os.path.join(root, controllers, path.lstrip("/")), os.path.join(root, controllers)}
        for base in bases:
            quota = _read(os.path.join(base, "cpu.cfs_quota_us"))
            period = _read(os.path.join(base, "cpu.cfs_period_us"))
            if quota and period and int(quota) > 0 and int(period) > 0:
                yield int(quota) / int(period)


def cgroup_cpu_quota(root: str = _CGROUP_ROOT, proc_cgroup: str | None = None) -> float | None:
    """The CPU time this process's cgroup may use, in CPUs (``cpu.max`` 150000 100000 -> 1.5).

    Args:
        root (str): where the cgroup file systems are mounted. Defaults to "/sys/fs/cgroup".
        proc_cgroup (str | None): the text of ``/proc/self/cgroup``; read when None.

    Returns:
        float | None: the tightest quota of the group and its parents (cgroup v2 ``cpu.max``
        or v1 ``cpu.cfs_quota_us / cpu.cfs_period_us``); None when nothing limits it.
    """
    if proc_cgroup is None:
        proc_cgroup = _read("/proc/self/cgroup") or ""
    for line in proc_cgroup.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, group = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            return min(_limits_v2(root, group), default=None)
        if "cpu" in controllers.split(","):
            return min(_limits_v1(root, controllers, group), default=None)
    return None


def usable_cpus(root: str = _CGROUP_ROOT, proc_cgroup: str | None = None) -> int:
    """How many CPUs this process may run on at once: its affinity mask, capped by its cgroup
    quota (rounded up: a 1.5-CPU quota keeps 2 threads busy part of the time)."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        count = os.cpu_count() or 1
    quota = cgroup_cpu_quota(root, proc_cgroup)
    if quota is not None:
        count = min(count, max(1, math.ceil(quota)))
    return max(1, count)


def openmp_started(maps_path: str = "/proc/self/maps") -> bool | None:
    """Whether an OpenMP runtime (GNU, Intel or LLVM) is loaded in this process; None when the
    process's memory map cannot be read (not on Linux)."""
    text = _read(maps_path)
    if text is None:
        return None
    return any(name in text for name in ("libgomp", "libiomp", "libomp"))


def prefer_passive_openmp() -> bool:
    """Makes OpenMP threads sleep, not spin, between parallel regions, unless the user chose.

    Sets ``OMP_WAIT_POLICY=PASSIVE`` when the variable is unset and no OpenMP runtime is loaded
    yet (the runtime reads it once, at start). Beside other CPU work, spinning threads wait
    for descheduled ones at every barrier: d2lite's inference measured up to 40x slower.
    ``D2LITE_OMP_PASSIVE=0`` in the environment leaves OpenMP's default.

    Returns:
        bool: True if the policy that will apply is passive.
    """
    if os.environ.get("D2LITE_OMP_PASSIVE") == "0":
        return False
    if "OMP_WAIT_POLICY" in os.environ:
        return os.environ["OMP_WAIT_POLICY"].upper() == "PASSIVE"
    if openmp_started() is not False:
        return False  # too late (torch was imported first), or unknown
    global PASSIVE_SET_BY_D2LITE
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    PASSIVE_SET_BY_D2LITE = True
    return True


def limit_threads_to_usable_cpus() -> int:
    """Lowers torch's intra-op threads to :func:`usable_cpus` unless the user chose a count.

    A count set through ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` or below the usable CPUs (e.g.
    ``torch.set_num_threads(1)`` before importing d2lite) is kept; only a pool larger than the
    CPUs the process may use is shrunk.

    Returns:
        int: torch's thread count afterwards.
    """
    import torch

    if not any(v in os.environ for v in _THREAD_VARIABLES):
        usable = usable_cpus()
        if torch.get_num_threads() > usable:
            torch.set_num_threads(usable)
    return torch.get_num_threads()
