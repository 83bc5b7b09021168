"""The demo's default SQLite database takes concurrent writers (web server threads, the worker, beat).

A subprocess runs against its own SQLite file (the rest of the suite uses PostgreSQL): eight threads submit the same
answer at once, five times over, through the real domain verb; none may fail with "database is locked".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_sqlite_takes_a_double_clicked_submit_and_concurrent_writers(tmp_path):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "REDIS_", "CELERY_"))}
    env = {
        **clean,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "CELERY_BROKER_URL": "filesystem://",
        "CELERY_FILESYSTEM_BROKER_DIR": str(tmp_path / "broker"),
        "FILE_CACHE_DIR": str(tmp_path / "cache"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "tests.config.sqlite_race"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["journal_mode"] == "wal"
    assert report["busy_timeout"] >= 10_000
    assert report["transaction_mode"] == "IMMEDIATE"
    for round_ in report["rounds"]:
        # The timed mode allows two tries: two submissions count, the other six are refused; none fails.
        assert sorted(round_["outcomes"]) == ["ok"] * 2 + ["refused"] * 6, round_["outcomes"]
        assert round_["answers"] == 2
