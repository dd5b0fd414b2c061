"""usable_cpus and the OpenMP settings: quotas from fake cgroup trees, the policy in fresh
processes."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from d2lite.utils.cpu import cgroup_cpu_quota, openmp_started, usable_cpus


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_quota_is_the_tightest_of_the_group_and_its_parents(tmp_path):
    _write(tmp_path / "kubepods" / "cpu.max", "400000 100000\n")
    _write(tmp_path / "kubepods" / "pod1" / "cpu.max", "150000 100000\n")
    _write(tmp_path / "kubepods" / "pod1" / "c1" / "cpu.max", "max 100000\n")
    assert cgroup_cpu_quota(str(tmp_path), "0::/kubepods/pod1/c1\n") == pytest.approx(1.5)


def test_cgroup_v2_without_a_limit_has_no_quota(tmp_path):
    _write(tmp_path / "cpu.max", "max 100000\n")
    assert cgroup_cpu_quota(str(tmp_path), "0::/\n") is None


def test_cgroup_v1_quota_and_the_unlimited_minus_one(tmp_path):
    group = tmp_path / "cpu,cpuacct" / "docker" / "abc"
    _write(group / "cpu.cfs_quota_us", "200000\n")
    _write(group / "cpu.cfs_period_us", "100000\n")
    text = "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n"
    assert cgroup_cpu_quota(str(tmp_path), text) == pytest.approx(2.0)
    _write(group / "cpu.cfs_quota_us", "-1\n")
    assert cgroup_cpu_quota(str(tmp_path), text) is None


def test_cgroup_v1_inside_a_container_reads_the_mounted_root(tmp_path):
    # The container sees its own group mounted at the controller's root.
    _write(tmp_path / "cpu" / "cpu.cfs_quota_us", "50000\n")
    _write(tmp_path / "cpu" / "cpu.cfs_period_us", "100000\n")
    assert cgroup_cpu_quota(str(tmp_path), "3:cpu:/docker/xyz\n") == pytest.approx(0.5)


def test_usable_cpus_is_the_affinity_capped_by_the_quota_rounded_up(tmp_path):
    affinity = len(os.sched_getaffinity(0))
    assert usable_cpus(str(tmp_path), "") == affinity
    _write(tmp_path / "cpu.max", "50000 100000\n")
    assert usable_cpus(str(tmp_path), "0::/\n") == 1  # half a CPU still runs one thread
    _write(tmp_path / "cpu.max", f"{(affinity + 8) * 100000} 100000\n")
    assert usable_cpus(str(tmp_path), "0::/\n") == affinity


def test_openmp_started_reads_the_memory_map(tmp_path):
    maps = tmp_path / "maps"
    maps.write_text("7f00-7f10 r-xp 0 08:01 1 /usr/lib/libc.so.6\n")
    assert openmp_started(str(maps)) is False
    maps.write_text(maps.read_text() + "7f20-7f30 r-xp 0 08:01 2 /site-packages/torch/lib/libgomp-a34b3233.so.1\n")
    assert openmp_started(str(maps)) is True
    assert openmp_started(str(tmp_path / "missing")) is None


def _fresh(code: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    environ.update(env)
    result = subprocess.run(
        [sys.executable, "-c", code], env=environ, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


POLICY = "import os; print(os.environ.get('OMP_WAIT_POLICY'))"


def test_importing_d2lite_first_makes_openmp_passive():
    assert _fresh("import d2lite; " + POLICY) == "PASSIVE"


def test_a_policy_the_user_set_is_kept():
    assert _fresh("import d2lite; " + POLICY, OMP_WAIT_POLICY="ACTIVE") == "ACTIVE"


def test_after_torch_the_policy_is_not_pretended():
    # The runtime has read its settings already: setting the variable would change nothing.
    assert _fresh("import torch, d2lite; " + POLICY) == "None"


def test_threads_follow_the_cpus_the_process_may_use():
    code = (
        "import os, torch; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]}); "
        "torch.set_num_threads(2); "
        "from d2lite.utils.cpu import limit_threads_to_usable_cpus as f; print(f())"
    )
    assert _fresh(code) == "1"
    assert _fresh(code, OMP_NUM_THREADS="2") == "2"  # the user's count is kept


def test_the_passive_default_can_be_turned_off():
    assert _fresh("import d2lite; " + POLICY, D2LITE_OMP_PASSIVE="0") == "None"
