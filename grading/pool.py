"""A pool of pre-warmed, single-use sandboxes (one pool per worker process).

Starting a sandbox costs seconds (importing torch, creating the device context, warming kernels); running a check
in a warm one costs about as much as the check itself. So each worker process keeps GRADING_POOL_SIZE sandboxes
warm and waiting for code on stdin. Each serves exactly one submission and is then discarded; a background thread
starts its replacement. Several replacements warm at once (GRADING_POOL_WARMING, by default half the CPU cores), so
a pool drained by a burst refills in about one warm-up time, not one per sandbox. On small machines (<= 2 cores) the
refill waits until the current grading is done and warms one sandbox at a time, so a warming sandbox never competes
with a running check for the CPU.
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

from grading.cgroups import sweep_stale_cgroups
from grading.sandbox import Sandbox, SandboxConfig, SandboxError

log = logging.getLogger(__name__)


class WarmPool:
    """Keeps `size` sandboxes started and warm; `lease()` hands out one, exactly once."""

    def __init__(
        self,
        size: int,
        config: Callable[[], SandboxConfig],
        defer_refill_while_busy: bool | None = None,
        warmups: list[dict[str, str]] | None = None,
        warming: int | None = None,
    ):
        self.size = max(1, int(size))
        self._config = config
        self.warmups = list(warmups or [])
        cores = os.cpu_count() or 1
        self._defer = cores <= 2 if defer_refill_while_busy is None else defer_refill_while_busy
        # How many sandboxes may warm at once (each import of torch keeps a core busy for seconds).
        self.max_warming = 1 if self._defer else max(1, min(self.size, int(warming or cores // 2)))
        self._cond = threading.Condition()
        self._ready: deque[Sandbox] = deque()
        self._warming = 0
        self._busy = 0
        self._closed = False
        self._error: Exception | None = None
        self._retry_at = 0.0
        self._backoff = 1.0
        self._thread: threading.Thread | None = None
        self._starting: set[Sandbox] = set()
        self.started_total = 0
        self.peak_warming = 0

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
        if self._closed or len(self._ready) + self._warming >= self.size or self._warming >= self.max_warming:
            return False
        if time.monotonic() < self._retry_at:
            return False
        return not (self._defer and (self._busy > 0 or self._warming > 0))

    def _refill_loop(self) -> None:
        try:
            sweep_stale_cgroups()
        except OSError:
            pass
        while True:
            with self._cond:
                while not self._needs_one():
                    if self._closed:
                        return
                    self._cond.wait(1.0)
                self._warming += 1
                self.peak_warming = max(self.peak_warming, self._warming)
            sb: Sandbox | None = None
            try:
                sb = Sandbox(self._config(), warmups=self.warmups)
                with self._cond:
                    self._starting.add(sb)
                # Spawned from this long-lived thread: bubblewrap's --die-with-parent follows the thread that
                # spawned it, so a sandbox started by a short-lived thread would die with that thread.
                sb.start()
            except Exception as exc:  # noqa: BLE001 - reported to lease(); this thread must live on
                self._failed(sb, exc)
                continue
            threading.Thread(target=self._wait_warm, args=(sb,), name="grading-pool-warm", daemon=True).start()

    def _wait_warm(self, sb: Sandbox) -> None:
        """Wait until a started sandbox is warm (seconds), then add it to the ready queue."""
        try:
            sb.wait_ready()
        except Exception as exc:  # noqa: BLE001 - reported to lease() like a failed start
            self._failed(sb, exc)
            return
        with self._cond:
            self._starting.discard(sb)
            self._warming -= 1
            self.started_total += 1
            closed = self._closed
            if not closed:
                self._error = None
                self._backoff = 1.0
                self._ready.append(sb)
            self._cond.notify_all()
        if closed:
            sb.close()

    def _failed(self, sb: Sandbox | None, exc: Exception) -> None:
        if sb is not None:
            sb.close()
        with self._cond:
            self._starting.discard(sb)
            self._warming -= 1
            if not self._closed:  # (a sandbox killed by close() is no failure)
                log.error("grading sandbox failed to start: %s", exc)
                # Back off before the next start (doubling up to 30 s): a broken sandbox must not spin.
                self._error = exc
                self._retry_at = time.monotonic() + self._backoff
                self._backoff = min(self._backoff * 2, 30.0)
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

            _pool = WarmPool(settings.GRADING_POOL_SIZE, SandboxConfig.from_settings, warmups=current_warmups(),
                             warming=settings.GRADING_POOL_WARMING or None)
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
