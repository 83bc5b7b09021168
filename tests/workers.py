"""Real Celery worker processes for integration tests: on pytest-django's test database and the test broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection

from config.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[1]


def purge_queues(*queues: str) -> None:
    """Drop messages earlier tests left on the broker for rows that no longer exist."""
    with celery_app.connection_for_write() as conn:
        for queue in queues:
            conn.default_channel.queue_purge(queue)


class CeleryWorker:
    """One `celery -A config worker --pool solo` subprocess (optionally with the embedded beat, the sweepers).

    It sees the rows the test writes because it connects to the same test database (`test_<name>`); tests using it
    need the transactional database.
    """

    def __init__(
        self,
        tmp_path: Path,
        *,
        queues: str = "gpu,default",
        name: str = "test",
        beat: bool = False,
        env: dict[str, str] | None = None,
        start_timeout_s: float = 120,
    ) -> None:
        db = connection.settings_dict
        password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
        full_env = {
            **os.environ,
            **(env or {}),
            "DATABASE_URL": f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}",
        }
        for key in ("METRICS_WORKER_PORT", "DJANGO_ALLOW_ASYNC_UNSAFE"):
            full_env.pop(key, None)
        tag = uuid.uuid4().hex[:8]
        self.log = tmp_path / f"worker-{tag}.log"
        command = [
            sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues, "--pool", "solo",
            "-n", f"{name}-{tag}@%h", "--without-mingle", "--without-gossip", "--without-heartbeat", "-l", "INFO",
        ]  # fmt: skip
        if beat:
            command += ["-B", "-s", str(tmp_path / f"beat-schedule-{tag}")]
        self._handle = self.log.open("w")
        self.process = subprocess.Popen(command, cwd=ROOT, env=full_env, stdout=self._handle, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + start_timeout_s
        while "ready." not in self.log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"the Celery worker did not start:\n{self.tail()}")
            time.sleep(0.2)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text()[-chars:]

    def kill(self) -> None:
        """SIGKILL: no warm shutdown, no acknowledgement, no cleanup (a node lost mid-task)."""
        if self.alive:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.alive:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self._handle.close()
