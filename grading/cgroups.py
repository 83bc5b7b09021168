"""Per-sandbox cgroups (memory: the cap that also holds with CUDA; pids: fork bombs), v1 or v2, and the sweeper of
the ones a killed worker left behind. Used by grading.sandbox; a machine that lets us create none falls back to
rlimits there."""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")


class Cgroups:
    """A per-sandbox cgroup (memory + pids). v1: /sys/fs/cgroup/{memory,pids}/<name>; v2: /sys/fs/cgroup/<name>."""

    def __init__(self, name: str, memory_bytes: int, pids_max: int) -> None:
        self.dirs: list[Path] = []
        self.memory_dir: Path | None = None
        self.version = 0
        v2 = CGROUP_ROOT / "cgroup.controllers"
        try:
            if v2.exists():
                self._v2(name, memory_bytes, pids_max)
            else:
                self._v1(name, memory_bytes, pids_max)
        except OSError as exc:
            log.warning("grading cgroup unavailable (%s); falling back to rlimits", exc)
            self.remove()
            self.memory_dir = None

    def _v1(self, name: str, memory_bytes: int, pids_max: int) -> None:
        mem, pids = CGROUP_ROOT / "memory", CGROUP_ROOT / "pids"
        if not (os.access(mem, os.W_OK) and (mem / "cgroup.procs").exists()):
            return
        d = mem / "grading" / name
        d.mkdir(parents=True)
        self.dirs.append(d)
        (d / "memory.limit_in_bytes").write_text(str(memory_bytes))
        swap = d / "memory.memsw.limit_in_bytes"
        if swap.exists():
            try:
                swap.write_text(str(memory_bytes))
            except OSError:
                pass
        self.memory_dir = d
        self.version = 1
        if os.access(pids, os.W_OK) and (pids / "cgroup.procs").exists():
            p = pids / "grading" / name
            p.mkdir(parents=True)
            self.dirs.append(p)
            (p / "pids.max").write_text(str(pids_max))

    def _v2(self, name: str, memory_bytes: int, pids_max: int) -> None:
        parent = CGROUP_ROOT / "grading"
        if not os.access(CGROUP_ROOT, os.W_OK):
            return
        parent.mkdir(exist_ok=True)
        (CGROUP_ROOT / "cgroup.subtree_control").write_text("+memory +pids")
        (parent / "cgroup.subtree_control").write_text("+memory +pids")
        d = parent / name
        d.mkdir()
        self.dirs.append(d)
        (d / "memory.max").write_text(str(memory_bytes))
        (d / "memory.swap.max").write_text("0")
        (d / "pids.max").write_text(str(pids_max))
        self.memory_dir = d
        self.version = 2

    @property
    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs]

    def oom_killed(self) -> bool:
        d = self.memory_dir
        if d is None:
            return False
        try:
            if self.version == 1:
                text = (d / "memory.oom_control").read_text()
                kills = [int(line.split()[1]) for line in text.splitlines() if line.startswith("oom_kill ")]
                if kills:
                    return kills[0] > 0
                return int((d / "memory.failcnt").read_text()) > 0
            events = (d / "memory.events").read_text()
            return any(line.split()[0] == "oom_kill" and int(line.split()[1]) > 0 for line in events.splitlines())
        except (OSError, ValueError, IndexError):
            return False

    def kill_all(self) -> None:
        for d in self.dirs:
            try:
                for pid in (d / "cgroup.procs").read_text().split():
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
            except OSError:
                pass

    def remove(self) -> None:
        for d in self.dirs:
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    self.kill_all()
                    time.sleep(0.02)
        self.dirs = []


def sweep_stale_cgroups() -> int:
    """Remove the empty per-sandbox cgroups that a killed worker left behind (named <worker pid>-<id>)."""
    removed = 0
    for parent in (CGROUP_ROOT / "memory" / "grading", CGROUP_ROOT / "pids" / "grading", CGROUP_ROOT / "grading"):
        if not parent.is_dir():
            continue
        for d in parent.iterdir():
            pid = d.name.split("-", 1)[0]
            if not d.is_dir() or not pid.isdigit():
                continue
            try:
                os.kill(int(pid), 0)
                continue  # its worker is alive
            except ProcessLookupError:
                pass
            except PermissionError:
                continue
            try:
                d.rmdir()
                removed += 1
            except OSError:
                pass
    return removed
