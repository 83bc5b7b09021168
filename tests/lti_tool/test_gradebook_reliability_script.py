"""scripts/gradebook_reliability.py keeps its promise (scaled down): every score recorded during a long LMS outage
reaches the LMS once it is back, none twice, and the outage was real (every attempt during it failed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_scores_recorded_during_an_outage_all_arrive_once():
    result = subprocess.run(
        [
            sys.executable,
            "scripts/gradebook_reliability.py",
            "--scores",
            "40",
            "--outage-minutes",
            "10",
            "--workers",
            "2",
        ],
        cwd=ROOT,
        env={**os.environ},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert "delivered/lost: 40/0" in result.stdout
    assert summary["delivered"] == 40 and summary["lost"] == 0 and summary["duplicates"] == 0
    assert summary["outage_simulated_s"] >= 600
    assert summary["delivered_during_outage"] == 0 and summary["attempts_during_outage"] >= 40 * 5
    assert summary["score_changes_during_outage"] == 4  # and the newer scores won (checked as "delivered")
    assert summary["outbox"] == {"waiting": 0, "delivered": 40, "superseded": 4, "refused": 0, "skipped": 0, "kept": 0}
