"""The CPUs a process can use, read from fake /proc and /sys trees: quotas, masks, counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_parallel_lab.capacity import CpuCapacity, cgroup_quota, read_capacity

V1_MOUNTS = (
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
)
V2_MOUNTS = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def v1(root: Path, path: str, quotas: dict[str, tuple[int, int]]) -> Path:
    files = {
        "proc/self/cgroup": f"4:memory:/x\n2:cpu,cpuacct:{path}\n",
        "proc/self/mountinfo": V1_MOUNTS,
    }
    for folder, (quota, period) in quotas.items():
        base = f"sys/fs/cgroup/cpu,cpuacct/{folder}".rstrip("/")
        files[f"{base}/cgroup.procs"] = ""
        files[f"{base}/cpu.cfs_quota_us"] = f"{quota}\n"
        files[f"{base}/cpu.cfs_period_us"] = f"{period}\n"
    return tree(root, files)


def v2(root: Path, path: str, limits: dict[str, str]) -> Path:
    files = {"proc/self/cgroup": f"0::{path}\n", "proc/self/mountinfo": V2_MOUNTS}
    for folder, text in limits.items():
        base = f"sys/fs/cgroup/{folder}".rstrip("/")
        files[f"{base}/cgroup.procs"] = ""
        files[f"{base}/cpu.max"] = f"{text}\n"
    return tree(root, files)


def test_a_v1_quota_of_one_cpu_is_found_in_the_process_cgroup(tmp_path: Path) -> None:
    root = v1(tmp_path, "/docker/abc", {"": (-1, 100000), "docker/abc": (100000, 100000)})
    assert cgroup_quota(root) == (1.0, "cgroup quota 100000/100000")


def test_a_v2_quota_on_an_ancestor_limits_its_descendants(tmp_path: Path) -> None:
    root = v2(
        tmp_path,
        "/kubepods/pod1/ctr",
        {"": "max 100000", "kubepods/pod1": "150000 100000", "kubepods/pod1/ctr": "max 100000"},
    )
    assert cgroup_quota(root) == (1.5, "cgroup quota 150000/100000")


def test_the_tightest_quota_on_the_way_up_wins(tmp_path: Path) -> None:
    root = v2(tmp_path, "/a/b", {"a": "300000 100000", "a/b": "50000 100000"})
    assert cgroup_quota(root) == (0.5, "cgroup quota 50000/100000")


@pytest.mark.parametrize(
    "limit", ["max 100000", "0 100000", "garbage", ""], ids=["max", "zero", "garbage", "empty"]
)
def test_no_usable_v2_quota_means_no_limit(tmp_path: Path, limit: str) -> None:
    assert cgroup_quota(v2(tmp_path, "/a", {"a": limit})) is None


def test_a_v1_quota_of_minus_one_means_no_limit(tmp_path: Path) -> None:
    assert cgroup_quota(v1(tmp_path, "/", {"": (-1, 100000)})) is None


def test_without_cgroup_files_there_is_no_quota(tmp_path: Path) -> None:
    assert cgroup_quota(tmp_path) is None


def test_a_quota_below_the_machine_is_the_limit_and_says_so(tmp_path: Path) -> None:
    root = v1(tmp_path, "/ci", {"ci": (100000, 100000)})
    capacity = read_capacity(root, {}, online=2, affinity=2, process_cpu_count=lambda: 2)
    assert capacity == CpuCapacity(2, 1.0, "cgroup quota 100000/100000")
    assert capacity.usable == 1
    assert capacity.describe() == "1 usable CPU: cgroup quota 100000/100000 of 2 online"


def test_a_fractional_quota_keeps_the_whole_cpus_it_can_use_busy(tmp_path: Path) -> None:
    root = v2(tmp_path, "/ci", {"ci": "150000 100000"})
    capacity = read_capacity(root, {}, online=4, affinity=4, process_cpu_count=lambda: 4)
    assert (capacity.cpus, capacity.usable) == (1.5, 2)
    assert capacity.describe() == (
        "2 usable CPUs (1.5 CPUs of time): cgroup quota 150000/100000 of 4 online"
    )


def test_an_affinity_mask_smaller_than_the_quota_is_the_limit(tmp_path: Path) -> None:
    root = v2(tmp_path, "/ci", {"ci": "300000 100000"})
    capacity = read_capacity(root, {}, online=8, affinity=2, process_cpu_count=lambda: 2)
    assert capacity == CpuCapacity(8, 2.0, "affinity mask of 2")


def test_python_cpu_count_is_honoured_on_every_python(tmp_path: Path) -> None:
    capacity = read_capacity(
        tmp_path, {"PYTHON_CPU_COUNT": "1"}, online=4, affinity=4, process_cpu_count=lambda: 4
    )
    assert capacity == CpuCapacity(4, 1.0, "PYTHON_CPU_COUNT=1")


def test_nothing_limiting_is_the_whole_machine(tmp_path: Path) -> None:
    capacity = read_capacity(tmp_path, {}, online=2, affinity=2, process_cpu_count=lambda: 2)
    assert capacity == CpuCapacity(2, 2.0, "")
    assert capacity.describe() == "2 usable CPUs"


def test_a_quota_above_the_machine_limits_nothing(tmp_path: Path) -> None:
    root = v1(tmp_path, "/ci", {"ci": (800000, 100000)})
    capacity = read_capacity(root, {}, online=2, affinity=2, process_cpu_count=lambda: 2)
    assert capacity.limit == ""


def test_this_process_has_at_least_one_cpu_and_no_more_than_the_machine() -> None:
    capacity = read_capacity()
    assert 1 <= capacity.usable <= capacity.online
