"""A pool of pre-warmed, single-use sandboxes (one pool per worker process).

Starting a sandbox costs seconds (importing torch, creating the device context, warming kernels); running a check
in a warm one costs about as much as the check itself. So each worker process keeps GRADING_POOL_SIZE sandboxes
warm and waiting for code on stdin. Each serves exactly one submission and is then discarded; a background thread
starts its replacement. On small machines (<= 2 cores) the refill waits until the current grading is done, so a
warming sandbox never competes with a running check for the CPU.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable

from django.conf import settings

from grading.sandbox import Sandbox, SandboxConfig, SandboxError, SandboxUnavailable, sweep_stale_cgroups

log = logging.getLogger(__name__)


class WarmPool:
    """Keeps `size` sandboxes started and warm; `lease()` hands out one, exactly once."""

    def __init__(
        self,
        size: int,
        config: Callable[[], SandboxConfig],
        defer_refill_while_busy: bool | None = None,
        warmups: list[dict[str, str]] | None = None,
    ):
        self.size = max(1, int(size))
        self._config = config
        self.warmups = list(warmups or [])
        self._defer = (os.cpu_count() or 1) <= 2 if defer_refill_while_busy is None else defer_refill_while_busy
        self._cond = threading.Condition()
        self._ready: deque[Sandbox] = deque()
        self._warming = 0
        self._busy = 0
        self._closed = False
        self._error: Exception | None = None
        self._thread: threading.Thread | None = None
        self._starting: set[Sandbox] = set()
        self.started_total = 0

    # --- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> WarmPool:
        """Start the background refiller (idempotent)."""
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                self._closed = False
                self._thread = threading.Thread(target=self._refill_loop, name="grading-pool", daemon=True)
                self._thread.start()
        return self

    def close(self) -> None:
        """Stop refilling and kill every idle sandbox."""
        with self._cond:
            self._closed = True
            idle = list(self._ready) + list(self._starting)
            self._ready.clear()
            self._cond.notify_all()
        for sb in idle:
            sb.close()

    # --- leasing -----------------------------------------------------------------------------------------------
    def lease(self, timeout: float | None = None) -> Sandbox:
        """A warm sandbox (waiting for one to finish warming when none is ready). Call `returned()` afterwards."""
        self.start()
        timeout = self._config().warm_timeout_s if timeout is None else timeout
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                while self._ready:
                    sb = self._ready.popleft()
                    if sb.proc is not None and sb.proc.poll() is None:
                        self._busy += 1
                        self._cond.notify_all()
                        return sb
                    sb.close()  # died while idle: discard
                if self._error is not None and self._warming == 0:
                    err, self._error = self._error, None
                    raise err
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SandboxError(f"no warm sandbox became available within {timeout:.0f} s")
                self._cond.wait(min(remaining, 1.0))

    def returned(self) -> None:
        """The leased sandbox is finished (it is single-use and already closed): let the refiller replace it."""
        with self._cond:
            self._busy = max(0, self._busy - 1)
            self._cond.notify_all()

    def wait_full(self, timeout: float = 300.0) -> bool:
        """Block until the pool is full of ready sandboxes (used by the benchmark and worker start-up)."""
        self.start()
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._ready) < self.size and not self._closed:
                if self._error is not None and self._warming == 0:
                    return False
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 1.0))
            return len(self._ready) >= self.size

    @property
    def ready_count(self) -> int:
        with self._cond:
            return len(self._ready)

    # --- refilling ---------------------------------------------------------------------------------------------
    def _needs_one(self) -> bool:
        if self._closed or len(self._ready) + self._warming >= self.size:
            return False
        return not (self._defer and (self._busy > 0 or self._warming > 0))

    def _refill_loop(self) -> None:
        try:
            sweep_stale_cgroups()
        except OSError:
            pass
        backoff = 1.0
        while True:
            with self._cond:
                while not self._needs_one():
                    if self._closed:
                        return
                    self._cond.wait(1.0)
                self._warming += 1
            sb = Sandbox(self._config(), warmups=self.warmups)
            with self._cond:
                self._starting.add(sb)
            try:
                sb.start()
                sb.wait_ready()
            except (SandboxUnavailable, SandboxError, OSError) as exc:
                sb.close()
                with self._cond:
                    self._starting.discard(sb)
                    if self._closed:
                        return
                log.error("grading sandbox failed to start: %s", exc)
                with self._cond:
                    self._warming -= 1
                    self._error = exc
                    self._cond.notify_all()
                time.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = 1.0
            with self._cond:
                self._starting.discard(sb)
                self._warming -= 1
                self.started_total += 1
                if self._closed:
                    sb.close()
                    return
                self._error = None
                self._ready.append(sb)
                self._cond.notify_all()


_pool: WarmPool | None = None
_pool_pid = 0
_pool_lock = threading.Lock()


def get_pool() -> WarmPool:
    """This process's pool (created on first use; a forked child gets its own)."""
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            from grading.services import current_warmups

            _pool = WarmPool(settings.GRADING_POOL_SIZE, SandboxConfig.from_settings, warmups=current_warmups())
            _pool_pid = os.getpid()
            atexit.register(_pool.close)
        return _pool.start()


def reset_pool() -> None:
    """Close and forget this process's pool (tests that change settings; worker shutdown)."""
    global _pool
    with _pool_lock:
        if _pool is not None:
            _pool.close()
        _pool = None
