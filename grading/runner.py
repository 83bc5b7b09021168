"""The program inside each sandbox. Never imported by the tool: grading.sandbox sends this file's text to a fresh
interpreter (`python -I -S -c <this source> <config json>`) that runs under bubblewrap as an unprivileged user.

Life of one sandbox (single use):
1. import torch, make the device ready (CUDA: per-process memory fraction), warm the kernels on a generic workload
   (no reference solution is ever loaded here: nothing of a correct answer is left in memory for the submission
   to find);
2. report READY on the result channel (an inherited pipe) and wait for one job on stdin;
3. lower the rlimits, run the submission's code, then the challenge's probe (the measuring half of its checks);
4. write exactly one result frame and leave with os._exit(0).

The result holds measurements only: the verdict is made outside, by the worker's judge, against the reference
solution's measurements that never enter this process. Printing, patching or forging here cannot pass a check.
"""

import json
import os
import resource
import struct
import sys
import time

_write = os.write
_dumps = json.dumps
_pack = struct.pack
_exit = os._exit
MAX_JOB_BYTES = 4 * 1024 * 1024


def _send(fd, obj):
    data = _dumps(obj).encode()
    buf = memoryview(_pack(">I", len(data)) + data)
    while buf:
        n = _write(fd, buf)
        buf = buf[n:]


def _read_exact(fd, n):
    chunks, got = [], 0
    while got < n:
        chunk = os.read(fd, min(1 << 20, n - got))
        if not chunk:
            raise EOFError("the grader closed the job channel")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _read_job():
    (n,) = struct.unpack(">I", _read_exact(0, 4))
    if n > MAX_JOB_BYTES:
        raise ValueError("job too large")
    return json.loads(_read_exact(0, n))


def _warm(torch, device):
    """Set the device's numerics, then run the kinds of kernels the checks use (conv 1x1/3x3 with stride, batch
    norm, ReLU, linear, tanh, SGD)."""
    if device == "cuda":
        # Full float32 precision and deterministic kernels, as on the CPU: a grade never depends on the device
        # (TF32 would move results by about 1e-3, the judges' tolerance).
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    nn = torch.nn
    torch.manual_seed(0)
    for cin, cout, stride, size in ((16, 16, 1, 8), (16, 32, 2, 9), (64, 16, 1, 6), (32, 64, 2, 7)):
        net = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
            nn.Conv2d(cout, cout, 1), nn.BatchNorm2d(cout), nn.ReLU(),
        ).to(device)
        x = torch.randn(2, cin, size, size, device=device, requires_grad=True)
        net(x).pow(2).mean().backward()
        net.eval()
        with torch.no_grad():
            net(x)
    mlp = nn.Sequential(*[nn.Sequential(nn.Linear(32, 32), nn.Tanh()) for _ in range(4)], nn.Linear(32, 1)).to(device)
    opt = torch.optim.SGD(mlp.parameters(), lr=0.01)
    x = torch.randn(256, 32, device=device)
    for _ in range(3):
        opt.zero_grad()
        loss = nn.functional.mse_loss(mlp(x), torch.zeros(256, 1, device=device))
        loss.backward()
        opt.step()
    if device == "cuda":
        torch.cuda.synchronize()


def _limit(cfg):
    """Rlimits for the submission's phase (hard limits too: the submission cannot raise them again)."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    cpu = int(used.ru_utime + used.ru_stime + cfg["cpu_s"]) + 1
    limits = [
        (resource.RLIMIT_CPU, cpu, cpu + 2),
        (resource.RLIMIT_FSIZE, cfg["fsize_bytes"], cfg["fsize_bytes"]),
        (resource.RLIMIT_NPROC, cfg["nproc"], cfg["nproc"]),
        (resource.RLIMIT_CORE, 0, 0),
    ]
    open_fds = len(os.listdir("/proc/self/fd"))
    limits.append((resource.RLIMIT_NOFILE, open_fds + cfg["nofile"], open_fds + cfg["nofile"]))
    if cfg.get("address_space_bytes"):
        with open("/proc/self/statm") as f:
            vm_now = int(f.read().split()[0]) * resource.getpagesize()
        limits.append((resource.RLIMIT_AS, vm_now + cfg["address_space_bytes"], vm_now + cfg["address_space_bytes"]))
    for which, soft, hard in limits:
        resource.setrlimit(which, (soft, hard))


def _where(exc):
    """The submission's own line number for an exception (only frames of the submission, never ours)."""
    line = None
    if isinstance(exc, SyntaxError) and exc.filename == "submission.py":
        line = exc.lineno
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "submission.py":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def main():
    cfg = json.loads(sys.argv[1])
    result_fd = int(cfg["result_fd"])
    sys.path[:0] = cfg["paths"]
    t0 = time.perf_counter()
    import torch

    device = cfg["device"]
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg["threads"]))
    if device == "cuda":
        torch.cuda.set_device(0)
        if cfg.get("gpu_fraction"):
            torch.cuda.set_per_process_memory_fraction(float(cfg["gpu_fraction"]), 0)
        torch.zeros(1, device="cuda")
    _warm(torch, device)
    # Then the current challenges' probes on deliberately wrong stand-ins: their exact shapes and code paths get
    # warm. Everything of it is dropped and collected before the submission can look.
    warm = _read_job()
    for item in warm.get("warmups", []):
        wns = {"__name__": "warmup"}
        pns = {"__name__": "probe"}
        try:
            exec(compile(item["code"], "warmup.py", "exec"), wns)  # noqa: S102 - trusted stand-in from checks.py
            exec(compile(item["probe"], "probe.py", "exec"), pns)  # noqa: S102 - trusted probe from checks.py
            pns["probe"](wns, device)
        except Exception:  # noqa: BLE001,S110 - a stand-in that trips a check is still a warm-up
            pass
        wns.clear()
        pns.clear()
    warm = item = wns = pns = None
    import gc

    gc.collect()
    if device == "cuda":
        torch.cuda.synchronize()
    _send(result_fd, {"ready": True, "device": device, "warm_s": time.perf_counter() - t0})

    job = _read_job()
    code, probe_source = job["code"], job["probe"]
    job = None
    # Nothing more comes from the worker: the submission reads an empty stdin.
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    _limit(cfg)

    import builtins

    ns = {"__name__": "submission", "__builtins__": builtins}
    t1 = time.perf_counter()
    try:
        exec(compile(code, "submission.py", "exec"), ns)  # noqa: S102 - the sandbox exists to run this
    except BaseException as exc:  # noqa: BLE001 - any failure of the submission's own code is its result
        external = False
        if device == "cuda" and "out of memory" in str(exc).lower():
            try:
                cap = float(cfg.get("gpu_fraction") or 1.0) * torch.cuda.get_device_properties(0).total_memory
                external = torch.cuda.max_memory_reserved() < 0.8 * cap
            except Exception:  # noqa: BLE001
                external = False
        _send(result_fd, {"ok": False, "phase": "load", "error": type(exc).__name__,
                          "message": str(exc)[:500], "line": _where(exc), "oom_external": external})
        os.close(result_fd)
        _exit(0)
    try:
        pns = {"__name__": "probe", "__builtins__": builtins}
        exec(compile(probe_source, "probe.py", "exec"), pns)  # noqa: S102 - the challenge's measuring half
        measurements = pns["probe"](ns, device)
        if device == "cuda":
            torch.cuda.synchronize()
        _send(result_fd, {"ok": True, "measurements": measurements, "check_s": time.perf_counter() - t1})
    except BaseException as exc:  # noqa: BLE001 - e.g. SystemExit or a CUDA error raised by the submission
        oom = "out of memory" in str(exc).lower()
        external = False
        if oom and device == "cuda":
            # Over its own cap, or starved by another process on the GPU (not this submission's fault)?
            try:
                cap = float(cfg.get("gpu_fraction") or 1.0) * torch.cuda.get_device_properties(0).total_memory
                external = torch.cuda.max_memory_reserved() < 0.8 * cap
            except Exception:  # noqa: BLE001
                external = False
        _send(result_fd, {"ok": False, "phase": "check", "error": type(exc).__name__, "oom": oom,
                          "oom_external": external, "line": _where(exc)})
    # Close the channel at once: the grader sees EOF now, and any second frame (forged by the submission) before it.
    os.close(result_fd)
    _exit(0)


if __name__ == "__main__":
    main()
