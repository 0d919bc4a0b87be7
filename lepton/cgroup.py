"""How many CPUs this process's cgroup CPU quota allows (containers: `docker run --cpus 1.5`,
Kubernetes CPU limits), for the default thread count (config.py).

    cpu_limit()            # 2 under a quota of 1.5 CPUs; None without a quota

A quota of q microseconds per period p allows ceil(q / p) threads' worth of CPU (at least 1); a
limit set higher up the hierarchy also applies, so every level from the process's cgroup to the
root counts and the smallest wins. cgroup v2 keeps "q p" (or "max p") in `cpu.max`; v1 keeps q
(-1: none) in `cpu.cfs_quota_us` and p in `cpu.cfs_period_us` under the cpu controller's mount.
Inside a container the path in /proc/self/cgroup may name the host's hierarchy, which the
container's mount does not show: levels that do not exist are skipped, so the mount's own root
(the container's cgroup) is still read. Anything unreadable counts as no limit.
"""
from __future__ import annotations

import math
from pathlib import Path


def cpu_limit(root: str = "/sys/fs/cgroup", membership: str = "/proc/self/cgroup") -> int | None:
    """The CPUs the quotas on this process's cgroups allow, or None (no quota, or unknown).
    `root` is where the cgroup filesystems are mounted, `membership` the process's
    /proc/<pid>/cgroup (both parameters so tests can use fake trees)."""
    try:
        lines = Path(membership).read_text().splitlines()
    except OSError:
        return None
    limits = []
    for line in lines:
        parts = line.strip().split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if hierarchy == "0" and controllers == "":       # v2 (alone, or "unified" in hybrid)
            mounts, read = [Path(root), Path(root) / "unified"], _v2_quota
        elif "cpu" in controllers.split(","):            # v1: cpu, or cpu,cpuacct
            mounts = [Path(root) / name for name in (controllers, "cpu", "cpu,cpuacct")]
            read = _v1_quota
        else:
            continue
        for mount in dict.fromkeys(mounts):
            if mount.is_dir():
                limits += [q for q in map(read, _levels(mount, path)) if q is not None]
    return min(limits, default=None)


def _levels(mount: Path, path: str) -> list[Path]:
    """The existing directories from mount/path up to mount."""
    parts = [p for p in path.split("/") if p and p not in (".", "..")]
    dirs = [mount.joinpath(*parts[:k]) for k in range(len(parts), -1, -1)]
    return [d for d in dirs if d.is_dir()]


def _cpus(quota: int, period: int) -> int | None:
    if quota <= 0 or period <= 0:
        return None
    return max(1, math.ceil(quota / period))


def _v2_quota(d: Path) -> int | None:
    try:
        quota, period = (d / "cpu.max").read_text().split()
        return None if quota == "max" else _cpus(int(quota), int(period))
    except (OSError, ValueError):
        return None


def _v1_quota(d: Path) -> int | None:
    try:
        return _cpus(int((d / "cpu.cfs_quota_us").read_text()),
                     int((d / "cpu.cfs_period_us").read_text()))
    except (OSError, ValueError):
        return None
