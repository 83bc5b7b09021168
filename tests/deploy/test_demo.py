"""`make demo` (scripts/demo.sh): its options are documented, and once it prints the address to open nothing else
scrolls it away (the web server, worker and beat log to files); Ctrl-C stops everything cleanly."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time

import pytest
import requests

from .conftest import ROOT

DEMO = ROOT / "scripts" / "demo.sh"
START_TIMEOUT_S = 240


def test_the_readme_documents_every_demo_option():
    options = set(re.findall(r"\b(DEMO_[A-Z_]+)\b", DEMO.read_text()))
    assert {"DEMO_PORT", "DEMO_LOG_DIR", "DEMO_VERBOSE"} <= options
    readme = (ROOT / "README.md").read_text()
    assert not [name for name in options if f"`{name}`" not in readme]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(predicate, what: str, timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


@pytest.mark.worker
def test_the_demo_keeps_its_address_on_screen_and_stops_on_ctrl_c(tmp_path):
    port = _free_port()
    logs = tmp_path / "logs"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "REDIS_", "CELERY_"))}
    env = {
        **clean,
        "DEMO_PORT": str(port),
        "DEMO_LOG_DIR": str(logs),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "CELERY_FILESYSTEM_BROKER_DIR": str(tmp_path / "broker"),
        "FILE_CACHE_DIR": str(tmp_path / "cache"),
    }
    out = tmp_path / "terminal.txt"
    with out.open("w") as terminal:
        demo = subprocess.Popen(["bash", str(DEMO)], cwd=ROOT, env=env, stdout=terminal, stderr=subprocess.STDOUT)
    banner = f"Open http://localhost:{port}/devlms/"
    try:
        _wait_for(lambda: "Ctrl-C stops all." in out.read_text() or demo.poll() is not None, "the address")
        assert banner in out.read_text(), out.read_text()[-3000:]
        # Beat and the worker are busy (beat sends its due tasks at start), the web server answers requests...
        _wait_for(lambda: "Sending due task" in (logs / "beat.log").read_text(), "beat's first tasks")
        root = requests.get(f"http://127.0.0.1:{port}/", timeout=30)
        assert root.status_code == 200 and f"http://127.0.0.1:{port}/devlms/" in root.text
        assert requests.get(f"http://127.0.0.1:{port}/nope", timeout=30).status_code == 404
        _wait_for(lambda: "GET /nope" in (logs / "web.log").read_text(), "the request log")
        # ...and the terminal still ends with the address: nothing was printed after it.
        terminal_text = out.read_text()
        assert terminal_text.rstrip().endswith("=" * 70), terminal_text[-2000:]
        assert banner in "\n".join(terminal_text.rstrip().splitlines()[-6:])
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            code = demo.wait(timeout=60)
        except subprocess.TimeoutExpired:
            demo.kill()
            raise
    assert code == 0, out.read_text()[-2000:]
    assert "exited; stopping the others" not in out.read_text()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
