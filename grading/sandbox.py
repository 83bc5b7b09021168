"""Single-use sandboxes for untrusted code: bubblewrap, cgroups, rlimits, a wall clock and an output cap.

One `Sandbox` is one fresh process tree that serves exactly one submission:

- bubblewrap with every namespace unshared (no network, own pid/ipc/uts/cgroup/user namespaces), uid/gid 65534,
  `--die-with-parent`, `--new-session`, all capabilities dropped, the environment cleared;
- a read-only view of nothing but the system's /usr (+ the loader cache), the Python installation and the
  site-packages directories that hold torch: no project code, settings, environment, database, keys or other
  submissions (the project directory is never bound; the runner, the probe and the code arrive over pipes);
- a private tmpfs /tmp, a minimal /dev, plus the `/dev/nvidia*` nodes when grading on CUDA;
- a cgroup per sandbox (memory: the cap that also holds with CUDA; pids: fork bombs) when the machine lets us
  create one (cgroup v1 controllers at /sys/fs/cgroup/<controller>, or cgroup v2); RLIMIT_AS for CPU-only jobs
  otherwise; rlimits (CPU time, file size, open files, processes, no core files) set by the runner before the
  submission runs; a wall-clock timeout and an output cap enforced here, by killing the whole tree.

Results come back on a separate pipe as length-prefixed JSON frames; the worker accepts exactly one result frame
after READY from a process that exited cleanly. Anything else fails the submission with a clear reason.
"""

from __future__ import annotations

import atexit
import fcntl
import glob
import importlib.util
import json
import logging
import os
import selectors
import shutil
import signal
import struct
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from grading.cgroups import Cgroups

log = logging.getLogger(__name__)

RUNNER_PATH = Path(__file__).with_name("runner.py")
MAX_FRAME_BYTES = 8 * 1024 * 1024
EOF_GRACE_S = 1.0
F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ (Linux)
OUTPUT_KEPT_BYTES = 8192
SANDBOX_UID = 65534
SANDBOX_TMP = "/tmp"  # noqa: S108 - inside the sandbox: its own private tmpfs


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot run here (bubblewrap missing or broken): refuse to grade; not the student's fault."""


class SandboxError(RuntimeError):
    """A sandbox broke before any student code ran (start or warm-up failed): not the student's fault."""


@dataclass(frozen=True)
class SandboxConfig:
    """Everything a sandbox needs, read once from settings (see config/settings.py, GRADING_*)."""

    mode: str = "bwrap"
    bwrap_path: str = "bwrap"
    device: str = "cpu"
    timeout_s: float = 60.0
    warm_timeout_s: float = 180.0
    memory_mb: int = 2048
    gpu_fraction: float = 0.25
    output_limit_bytes: int = 1_048_576
    pids_max: int = 256
    threads: int = 0

    @classmethod
    def from_settings(cls, **overrides: Any) -> SandboxConfig:
        device = resolve_device(settings.GRADING_DEVICE)
        values = {
            "mode": settings.GRADING_SANDBOX,
            "bwrap_path": settings.GRADING_BWRAP_PATH,
            "device": device,
            # One intra-op thread per CPU sandbox: small checks gain nothing from more, and threads that spin on
            # a shared 2-core machine make every sandbox slower. Parallelism comes from several sandboxes.
            "threads": 1 if device == "cpu" else 0,
            "timeout_s": float(settings.GRADING_TIMEOUT_S),
            "memory_mb": int(settings.GRADING_MEMORY_MB),
            "gpu_fraction": float(settings.GRADING_GPU_MEMORY_FRACTION),
            "output_limit_bytes": int(settings.GRADING_OUTPUT_LIMIT_BYTES),
        }
        values.update(overrides)
        return cls(**values)


@dataclass
class Outcome:
    """What one sandbox run produced. status: "ok" (measurements to judge), "failed" (the submission's fault, with
    a reason for the student) or "error" (ours: the sandbox broke before the submission ran)."""

    status: str
    reason: str = ""
    measurements: Any = None
    check_s: float | None = None
    wall_s: float = 0.0
    output_bytes: int = 0
    output_head: str = ""
    exit_code: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


def resolve_device(setting: str) -> str:
    """"cuda" when asked for or (auto) when NVIDIA device nodes exist, else "cpu". Never imports torch."""
    setting = (setting or "auto").lower()
    if setting in {"cpu", "cuda"}:
        return setting
    return "cuda" if glob.glob("/dev/nvidia[0-9]*") and os.path.exists("/dev/nvidiactl") else "cpu"


_BWRAP_CHECKED: dict[str, str] = {}


def check_available(cfg: SandboxConfig) -> None:
    """Raise SandboxUnavailable unless the configured sandbox can run here (cached once it worked)."""
    if cfg.mode == "unsafe":
        log.warning("GRADING_SANDBOX=unsafe: student code runs WITHOUT isolation. Demo use only, never production.")
        return
    if cfg.mode != "bwrap":
        raise SandboxUnavailable(f"unknown GRADING_SANDBOX {cfg.mode!r} (use 'bwrap')")
    path = shutil.which(cfg.bwrap_path)
    if not path:
        raise SandboxUnavailable(
            f"bubblewrap ({cfg.bwrap_path!r}) is not installed: code grading is refused until it is "
            "(Debian: apt-get install bubblewrap)."
        )
    if _BWRAP_CHECKED.get(path) == "ok":
        return
    probe = subprocess.run(
        [path, "--unshare-all", "--die-with-parent", *_system_binds(), "--proc", "/proc",
         "--dev", "/dev", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--", "/usr/bin/true"],
        capture_output=True, timeout=30, check=False,
    )
    if probe.returncode != 0:
        raise SandboxUnavailable(
            "bubblewrap cannot create a sandbox on this machine: "
            + probe.stderr.decode(errors="replace").strip()[:300]
        )
    _BWRAP_CHECKED[path] = "ok"


def _python_paths() -> tuple[str, list[str]]:
    """The real interpreter and the directories the sandbox needs: its installation and torch's site-packages."""
    exe = os.path.realpath(sys.executable)
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.origin:
        raise SandboxUnavailable("torch is not installed in the worker's environment")
    torch_site = str(Path(spec.origin).resolve().parent.parent)
    paths = [torch_site]
    for key in ("purelib", "platlib"):
        p = str(Path(sysconfig.get_paths()[key]).resolve())
        if p not in paths:
            paths.append(p)
    return exe, paths


def _system_binds() -> list[str]:
    """Read-only /usr and the top-level library/binary directories (symlinks on merged-/usr systems)."""
    args: list[str] = ["--ro-bind", "/usr", "/usr"]
    for name in ("lib", "lib32", "lib64", "bin", "sbin"):
        host = Path("/") / name
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), f"/{name}"]
        elif host.is_dir():
            args += ["--ro-bind", str(host), f"/{name}"]
    return [*args, "--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]


def _binds(exe: str, paths: list[str], device: str, lib_dirs: list[str]) -> list[str]:
    args = _system_binds()
    mounted = ["/usr"]
    prefix = str(Path(sys.base_prefix).resolve())
    for p in [prefix, os.path.dirname(os.path.dirname(exe)), *paths]:
        if not any(p == m or p.startswith(m + "/") for m in mounted):
            args += ["--ro-bind", p, p]
            mounted.append(p)
    if device == "cuda":
        # The GPU is reachable only through its device nodes; /sys (read-only) lets the driver enumerate it.
        for node in sorted(glob.glob("/dev/nvidia*")):
            if os.path.exists(node) and not os.path.isdir(node):
                args += ["--dev-bind", node, node]
        if os.path.isdir("/dev/nvidia-caps"):
            args += ["--dev-bind", "/dev/nvidia-caps", "/dev/nvidia-caps"]
        args += ["--ro-bind", "/sys", "/sys"]
        # Driver libraries found through the worker's LD_LIBRARY_PATH (as CUDA images set it), read-only.
        for p in lib_dirs:
            if not any(p == m or p.startswith(m + "/") for m in mounted):
                args += ["--ro-bind", p, p]
                mounted.append(p)
    return args


def _driver_library_dirs() -> list[str]:
    """The existing absolute directories of the worker's LD_LIBRARY_PATH (operator configuration, not a secret)."""
    dirs = []
    for p in os.environ.get("LD_LIBRARY_PATH", "").split(":"):
        if p.startswith("/") and os.path.isdir(p) and (real := os.path.realpath(p)) not in dirs:
            dirs.append(real)
    return dirs


_teardowns: set[threading.Thread] = set()


@atexit.register
def finish_teardowns(timeout: float = 10.0) -> None:
    """Let background teardowns finish (cgroups removed) before the process exits."""
    deadline = time.monotonic() + timeout
    for thread in list(_teardowns):
        thread.join(max(0.0, deadline - time.monotonic()))


class Sandbox:
    """One single-use sandbox: start() it, wait_ready(), run() one submission, then it is gone."""

    def __init__(self, cfg: SandboxConfig, warmups: list[dict[str, str]] | None = None) -> None:
        self.cfg = cfg
        # [{"code": stand-in source, "probe": probe source}]: run before READY to warm the checks' exact kernels.
        self.warmups = list(warmups or [])
        self.proc: subprocess.Popen[bytes] | None = None
        self.cgroups: Cgroups | None = None
        self.ready = False
        self.used = False
        self.warm_s: float | None = None
        self.started_at = 0.0
        self._res_r = -1
        self._buf = b""
        self._frames: list[dict[str, Any]] = []
        self._out_head = bytearray()
        self._out_bytes = 0
        self._res_eof = False
        self._out_eof = False
        self._close_lock = threading.Lock()

    # --- start -------------------------------------------------------------------------------------------------
    def command(self, result_fd: int) -> list[str]:
        cfg = self.cfg
        exe, paths = _python_paths()
        runner_cfg = {
            "result_fd": result_fd,
            "paths": paths,
            "device": cfg.device,
            "threads": cfg.threads,
            "gpu_fraction": cfg.gpu_fraction if cfg.device == "cuda" else None,
            "cpu_s": max(5, int(cfg.timeout_s * max(1, os.cpu_count() or 1)) + 5),
            "fsize_bytes": 16 * 1024 * 1024,
            "nofile": 64,
            "nproc": cfg.pids_max,
            # Without a memory cgroup, cap the address space instead (CPU only: CUDA maps huge virtual ranges).
            "address_space_bytes": (
                cfg.memory_mb * 1024 * 1024
                if (self.cgroups is None or self.cgroups.memory_dir is None) and cfg.device == "cpu" else None
            ),
        }
        inner = [exe, "-I", "-S", "-B", "-c", RUNNER_PATH.read_text(), json.dumps(runner_cfg)]
        if cfg.mode == "unsafe":
            return inner
        env = ["--clearenv", "--setenv", "HOME", SANDBOX_TMP, "--setenv", "PATH", "/usr/bin:/bin",
               "--setenv", "LANG", "C.UTF-8", "--setenv", "PYTHONHASHSEED", "0"]
        if cfg.device == "cuda" and os.environ.get("CUDA_VISIBLE_DEVICES"):
            env += ["--setenv", "CUDA_VISIBLE_DEVICES", os.environ["CUDA_VISIBLE_DEVICES"]]
        lib_dirs = _driver_library_dirs() if cfg.device == "cuda" else []
        if lib_dirs:
            env += ["--setenv", "LD_LIBRARY_PATH", ":".join(lib_dirs)]
        return [
            shutil.which(cfg.bwrap_path) or cfg.bwrap_path,
            "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--hostname", "sandbox",
            # The private /tmp first, then the binds: a worker installed under /tmp (a CI checkout, say) keeps its
            # interpreter and site-packages visible on top of the tmpfs.
            "--proc", "/proc", "--dev", "/dev", "--tmpfs", SANDBOX_TMP,
            *_binds(exe, paths, cfg.device, lib_dirs),
            # Everything else read-only, the sandbox's own root too: only /tmp (a private tmpfs) is writable.
            "--remount-ro", "/", "--chdir", SANDBOX_TMP,
            *env,
            "--", *inner,
        ]

    def start(self) -> None:
        """Spawn the sandbox (it imports torch and warms up in the background; see wait_ready)."""
        cfg = self.cfg
        check_available(cfg)
        self.cgroups = Cgroups(f"{os.getpid()}-{uuid.uuid4().hex[:12]}", cfg.memory_mb * 1024 * 1024, cfg.pids_max)
        res_r, res_w = os.pipe()
        cmd = self.command(res_w)
        # Join the cgroups before anything of the sandbox exists: the shell writes its own pid, then execs.
        procs = self.cgroups.procs_files
        script = 'set -e; for f in "$@"; do [ "$f" = "--" ] && break; echo $$ > "$f"; shift; done; shift; exec "$@"'
        argv = ["/bin/sh", "-c", script, "sh", *procs, "--", *cmd]
        env = {"PATH": "/usr/bin:/bin"}
        if cfg.mode != "bwrap":
            env["HOME"] = tempfile.gettempdir()
        try:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                pass_fds=(res_w,), close_fds=True, env=env, cwd=tempfile.gettempdir(), start_new_session=True,
            )
        finally:
            os.close(res_w)
        self._res_r = res_r
        os.set_blocking(res_r, False)
        try:  # room for the warm-up and job frames, so writing them never waits on the sandbox
            fcntl.fcntl(self.proc.stdin.fileno(), F_SETPIPE_SZ, 1 << 20)
        except OSError:
            pass
        warm = json.dumps({"warmups": self.warmups}).encode()
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(struct.pack(">I", len(warm)) + warm)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # it died at once: wait_ready reports why
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.started_at = time.monotonic()

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until the sandbox reported READY; SandboxError if it died or took too long."""
        if self.ready:
            return
        timeout = self.cfg.warm_timeout_s if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while not self._frames:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.close()
                raise SandboxError(f"the sandbox did not become ready within {timeout:.0f} s")
            self._pump(remaining)
            if self._res_eof and not self._frames:
                self.close()
                raise SandboxError("the sandbox died while warming up: " + bytes(self._out_head).decode(
                    errors="replace")[-800:])
        frame = self._frames.pop(0)
        if not frame.get("ready"):
            self.close()
            raise SandboxError("the sandbox sent no READY")
        self.warm_s = frame.get("warm_s")
        self.ready = True
        # Output of the warm-up (library warnings) is not the submission's.
        self._out_head.clear()
        self._out_bytes = 0

    # --- I/O -----------------------------------------------------------------------------------------------------
    def _pump(self, timeout: float) -> None:
        """Read whatever the sandbox wrote within `timeout` seconds into the frame buffer and the output counter."""
        assert self.proc is not None and self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        out_fd = self.proc.stdout.fileno()
        if not self._res_eof:
            sel.register(self._res_r, selectors.EVENT_READ, "res")
        if not self._out_eof:
            sel.register(out_fd, selectors.EVENT_READ, "out")
        if not sel.get_map():
            time.sleep(min(timeout, 0.05))
            return
        try:
            for key, _ in sel.select(timeout):
                try:
                    data = os.read(key.fd, 1 << 16)
                except BlockingIOError:
                    continue
                if key.data == "res":
                    if not data:
                        self._res_eof = True
                    else:
                        self._buf += data
                        self._parse()
                else:
                    if not data:
                        self._out_eof = True
                    else:
                        self._out_bytes += len(data)
                        room = OUTPUT_KEPT_BYTES - len(self._out_head)
                        if room > 0:
                            self._out_head += data[:room]
        finally:
            sel.close()

    def _parse(self) -> None:
        while len(self._buf) >= 4:
            (n,) = struct.unpack(">I", self._buf[:4])
            if n > MAX_FRAME_BYTES:
                self._frames.append({"malformed": True})
                self._buf = b""
                return
            if len(self._buf) < 4 + n:
                return
            raw, self._buf = self._buf[4 : 4 + n], self._buf[4 + n :]
            try:
                frame = json.loads(raw)
            except ValueError:
                frame = {"malformed": True}
            self._frames.append(frame if isinstance(frame, dict) else {"malformed": True})

    # --- one submission ----------------------------------------------------------------------------------------
    def run(self, code: str, probe_source: str, timeout_s: float | None = None) -> Outcome:
        """Run one submission's code and the probe; the sandbox is finished afterwards, whatever happens."""
        if self.used:
            raise SandboxError("a sandbox serves exactly one submission")
        self.used = True
        if not self.ready:
            self.wait_ready()
        assert self.proc is not None and self.proc.stdin is not None
        timeout = float(timeout_s or self.cfg.timeout_s)
        t0 = time.monotonic()
        deadline = t0 + timeout
        killed_for = ""
        try:
            payload = json.dumps({"code": code, "probe": probe_source}).encode()
            try:
                self.proc.stdin.write(struct.pack(">I", len(payload)) + payload)
                self.proc.stdin.flush()
                self.proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass  # it died already: the exit status below says why
            # The result is taken as soon as one whole frame has arrived: the verdict is the judge's (outside), so
            # nothing after it matters, and the process is torn down in the background instead of on our time.
            while not self._frames and not self._res_eof:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    killed_for = "timeout"
                    break
                self._pump(min(remaining, 1.0))
                if self._out_bytes > self.cfg.output_limit_bytes:
                    killed_for = "output"
                    break
            if self._frames and not killed_for:
                # The runner closes the channel right after its frame: a second frame before EOF was forged by the
                # submission. A child process still holding the channel only costs this short grace.
                grace = min(deadline, time.monotonic() + EOF_GRACE_S)
                while not self._res_eof and time.monotonic() < grace and len(self._frames) < 2:
                    self._pump(max(0.0, grace - time.monotonic()))
                return self._outcome(0, "", False, time.monotonic() - t0, timeout)
            # No result: the process ended (or closed the channel), or we stop it now. Find out why.
            if killed_for:
                self._kill()
            try:
                exit_code = self.proc.wait(timeout=max(0.5, deadline - time.monotonic()) if not killed_for else 5)
            except subprocess.TimeoutExpired:
                killed_for = "timeout"
                self._kill()
                exit_code = self.proc.wait(timeout=5)
            for _ in range(20):  # drain what is left (a fast exit can leave bytes in the pipes)
                if self._res_eof and self._out_eof:
                    break
                self._pump(0.05)
            if self._out_bytes > self.cfg.output_limit_bytes:
                killed_for = "output"
            oom = bool(self.cgroups and self.cgroups.oom_killed())
            return self._outcome(exit_code, killed_for, oom, time.monotonic() - t0, timeout)
        finally:
            self.retire()

    def retire(self) -> None:
        """Tear the used sandbox down in the background (killing it and removing its cgroups takes a while)."""
        thread = threading.Thread(target=self._close_and_forget, name="sandbox-teardown", daemon=True)
        _teardowns.add(thread)
        thread.start()

    def _close_and_forget(self) -> None:
        try:
            self.close()
        finally:
            _teardowns.discard(threading.current_thread())

    def _outcome(self, exit_code: int, killed_for: str, oom: bool, wall: float, timeout: float) -> Outcome:
        base = {"wall_s": wall, "output_bytes": self._out_bytes, "exit_code": exit_code,
                "output_head": bytes(self._out_head).decode(errors="replace")}
        limit_mb = self.cfg.output_limit_bytes / 1_048_576
        if killed_for == "output":
            return Outcome("failed", f"Your code printed more than {limit_mb:g} MB of output and was stopped.",
                           **base)
        if killed_for == "timeout":
            return Outcome("failed", f"Your code did not finish within the time limit of {timeout:g} s "
                           "(an endless loop, or far too much work for the checks?).", **base)
        if oom:
            return Outcome("failed", f"Your code used more than the memory limit of {self.cfg.memory_mb} MB and "
                           "was stopped.", **base)
        if not self._frames and exit_code != 0:
            sig = exit_code - 128 if exit_code > 128 else (-exit_code if exit_code < 0 else 0)
            if sig == signal.SIGXCPU:
                return Outcome("failed", "Your code used more CPU time than allowed and was stopped.", **base)
            if sig == signal.SIGXFSZ:
                return Outcome("failed", "Your code wrote a file larger than allowed and was stopped.", **base)
            if sig:
                return Outcome("failed", f"The process running your code was killed by signal {sig} "
                               f"({signal.Signals(sig).name}) before the checks finished.", **base)
            return Outcome("failed", f"Your code ended the process (exit status {exit_code}) before the checks "
                           "finished: do not call exit() or os._exit().", **base)
        frames = self._frames
        if not frames:
            return Outcome("failed", "Your code ended the process before the checks finished (exit(), os._exit() "
                           "or a crash): no result was produced.", **base)
        if len(frames) > 1 or frames[0].get("malformed"):
            return Outcome("failed", "Something other than the grader wrote to the grader's result channel: the "
                           "result was discarded.", **base)
        frame = frames[0]
        if frame.get("oom_external"):
            # CUDA ran out of memory while this submission was far below its own share: another process on the
            # GPU took it. Not the student's fault: an error, retried later.
            return Outcome("error", "The GPU ran out of memory because of another process; grading will be retried.",
                           **base)
        if frame.get("ok") is True:
            return Outcome("ok", measurements=frame.get("measurements"), check_s=_float(frame.get("check_s")),
                           **base)
        line = frame.get("line")
        at = f" (line {line})" if isinstance(line, int) else ""
        err = str(frame.get("error", "an error"))[:100]
        if frame.get("phase") == "load":
            msg = str(frame.get("message", ""))[:300]
            return Outcome("failed", f"Your code raised {err}{at} while it was loaded: {msg}".rstrip(": "), **base)
        if frame.get("oom"):
            return Outcome("failed", f"Your code ran out of {'GPU ' if self.cfg.device == 'cuda' else ''}memory "
                           "during the checks.", **base)
        return Outcome("failed", f"The checks were interrupted by {err}{at} from your code (e.g. exit() or an "
                       "exception that is not an Exception).", **base)

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self.cgroups is not None:
            self.cgroups.kill_all()

    def close(self) -> None:
        """Kill whatever is left of the sandbox and release its cgroups and pipes (idempotent, thread-safe)."""
        with self._close_lock:
            self._close()

    def _close(self) -> None:
        self._kill()
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            for stream in (self.proc.stdin, self.proc.stdout):
                try:
                    if stream is not None:
                        stream.close()
                except OSError:
                    pass
        if self._res_r >= 0:
            try:
                os.close(self._res_r)
            except OSError:
                pass
            self._res_r = -1
        if self.cgroups is not None:
            self.cgroups.remove()
            self.cgroups = None
        self.ready = False

    def __del__(self) -> None:  # a sandbox must never outlive its owner
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.close()
        except Exception:  # noqa: BLE001,S110 - interpreter shutdown
            pass


def _float(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
