"""What the sandbox is built from: binds, environment and limits (no process started; the hostile suite runs them)."""

from __future__ import annotations

import json
import os

from django.conf import settings

from grading import sandbox
from grading.sandbox import Sandbox, SandboxConfig


def binds(cmd: list[str]) -> list[tuple[str, str, str]]:
    out = []
    for i, arg in enumerate(cmd):
        if arg in {"--ro-bind", "--bind", "--dev-bind", "--ro-bind-try"}:
            out.append((arg, cmd[i + 1], cmd[i + 2]))
    return out


def runner_config(cmd: list[str]) -> dict:
    return json.loads(cmd[-1])


def test_only_the_system_python_and_torch_site_packages_are_bound_read_only():
    cmd = Sandbox(SandboxConfig(device="cpu")).command(result_fd=5)

    assert cmd[0].endswith("bwrap") and "--unshare-all" in cmd and "--die-with-parent" in cmd and "--new-session" in cmd
    assert cmd[cmd.index("--uid") + 1] == "65534" and cmd[cmd.index("--cap-drop") + 1] == "ALL"
    assert "--clearenv" in cmd and "--remount-ro" in cmd
    base = str(settings.BASE_DIR)
    for kind, src, _dest in binds(cmd):
        assert kind in {"--ro-bind", "--ro-bind-try"}, (kind, src)  # nothing writable, no device on CPU
        if src.startswith(base):
            assert "site-packages" in src, src  # never the project itself, only where torch lives
    assert not any(src == base for _k, src, _d in binds(cmd))
    # The code and the checks are not on the command line: they come over a pipe.
    assert not any("BasicBlock" in arg for arg in cmd)


def test_a_worker_installed_under_tmp_stays_visible_over_the_private_tmp(monkeypatch):
    # A CI checkout or a virtualenv under /tmp: its site-packages must be bound after the sandbox's own tmpfs /tmp,
    # or the tmpfs hides them and no submission can import torch.
    site = "/tmp/checkout/.venv/lib/python3.11/site-packages"
    monkeypatch.setattr(sandbox, "_python_paths", lambda: ("/usr/bin/python3", [site]))
    cmd = Sandbox(SandboxConfig(device="cpu")).command(result_fd=5)
    tmpfs_at = cmd.index("--tmpfs")
    assert cmd[tmpfs_at + 1] == "/tmp"
    bind_at = next(i for i, arg in enumerate(cmd) if arg == "--ro-bind" and cmd[i + 1] == site)
    assert bind_at > tmpfs_at and cmd[bind_at + 2] == site


def test_cpu_sandboxes_cap_memory_with_a_cgroup_or_else_the_address_space():
    sb = Sandbox(SandboxConfig(device="cpu", memory_mb=1024))
    assert runner_config(sb.command(result_fd=5))["address_space_bytes"] == 1024 * 1024 * 1024  # no cgroup yet
    sb.cgroups = type("Cg", (), {"memory_dir": "/sys/fs/cgroup/memory/grading/x"})()
    assert runner_config(sb.command(result_fd=5))["address_space_bytes"] is None  # the cgroup caps it


def test_cuda_sandboxes_see_the_gpu_only_through_its_device_nodes(monkeypatch):
    nodes = ["/dev/nvidia0", "/dev/nvidiactl", "/dev/nvidia-uvm"]
    monkeypatch.setattr(sandbox.glob, "glob", lambda pattern: nodes if pattern == "/dev/nvidia*" else [])
    monkeypatch.setattr(sandbox.os.path, "exists", lambda p: p in nodes or os.path.lexists(p))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")

    cmd = Sandbox(SandboxConfig(device="cuda", gpu_fraction=0.2, memory_mb=4096)).command(result_fd=5)

    assert [(src, dest) for kind, src, dest in binds(cmd) if kind == "--dev-bind"] == [(n, n) for n in sorted(nodes)]
    i = cmd.index("CUDA_VISIBLE_DEVICES")
    assert cmd[i - 1] == "--setenv" and cmd[i + 1] == "3"
    cfg = runner_config(cmd)
    assert cfg["device"] == "cuda" and cfg["gpu_fraction"] == 0.2
    assert cfg["address_space_bytes"] is None  # CUDA maps huge virtual ranges: the cgroup is the memory cap


def test_cuda_sandboxes_find_the_driver_through_the_workers_library_path_read_only(monkeypatch, tmp_path):
    # CUDA images often find libcuda through LD_LIBRARY_PATH, which --clearenv would drop: CUDA sandboxes keep
    # its existing directories (bound read-only), CPU sandboxes get none of it.
    driver = tmp_path / "nvidia" / "lib64"
    driver.mkdir(parents=True)
    monkeypatch.setenv("LD_LIBRARY_PATH", f"{driver}:/no/such/dir:relative/dir")

    cmd = Sandbox(SandboxConfig(device="cuda")).command(result_fd=5)

    assert ("--ro-bind", str(driver), str(driver)) in binds(cmd)
    i = cmd.index("LD_LIBRARY_PATH")
    assert cmd[i - 1] == "--setenv" and cmd[i + 1] == str(driver)
    cpu = Sandbox(SandboxConfig(device="cpu")).command(result_fd=5)
    assert "LD_LIBRARY_PATH" not in cpu and not any(src == str(driver) for _k, src, _d in binds(cpu))


def test_unsafe_mode_is_a_plain_process_and_is_never_the_default():
    assert SandboxConfig.from_settings().mode == "bwrap"
    cmd = Sandbox(SandboxConfig(mode="unsafe")).command(result_fd=5)
    assert "--unshare-all" not in cmd and cmd[1:5] == ["-I", "-S", "-B", "-c"]
