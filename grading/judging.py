"""The trusted half of a hidden check: split a challenge's checks.py, and judge measurements on the worker.

A checks.py has two halves separated by the JUDGE_MARKER line. The probe half (above) is sent into the sandbox
and runs on the submission: it measures and returns plain JSON. The judge half (below) runs here, in the worker,
and compares those measurements with the reference solution's; expected values and verdict logic never enter the
sandbox, so nothing the submission prints, patches or forges there can turn a failed check into a passed one.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

JUDGE_MARKER = "# === judge:"


class ChecksError(Exception):
    """A challenge's checks.py is malformed (our fault, never the student's)."""


@dataclass(frozen=True)
class CheckSuite:
    """A parsed checks.py: the probe source for the sandbox and the judge's functions for the worker."""

    probe_source: str
    namespace: dict[str, Any] = field(repr=False, compare=False)
    digest: str = ""

    def judge(self, measurements: Any, reference: Any) -> list[dict[str, Any]]:
        """The checks [{name, passed, points, max_points, feedback}], never raising for bad measurements."""
        try:
            checks = self.namespace["judge"](measurements, reference)
        except Exception as exc:  # noqa: BLE001 - a judge bug must not crash the worker; reported as ours
            raise ChecksError(f"the judge failed: {type(exc).__name__}: {exc}") from exc
        return [_clean_check(c) for c in checks]

    def artifacts(self, measurements: Any) -> dict[str, Any]:
        """Extra results for the feedback page (e.g. loss curves); {} when the measurements are unusable."""
        fn = self.namespace.get("artifacts")
        try:
            result = fn(measurements) if fn else {}
        except Exception:  # noqa: BLE001 - malformed (possibly forged) measurements give no artifacts
            return {}
        return result if isinstance(result, dict) else {}

    @property
    def max_points(self) -> float:
        return float(sum(weight for _key, _title, weight in self.namespace["CHECKS"]))

    @property
    def needs_reference(self) -> bool:
        return bool(self.namespace.get("NEEDS_REFERENCE", True))


def _clean_check(check: dict[str, Any]) -> dict[str, Any]:
    max_points = float(check.get("max_points", 0.0))
    points = float(check.get("points", 0.0))
    if not math.isfinite(points):
        points = 0.0
    return {
        "name": str(check.get("name", ""))[:200],
        "passed": bool(check.get("passed")),
        "points": max(0.0, min(points, max_points)),
        "max_points": max_points,
        "feedback": str(check.get("feedback", ""))[:2000],
    }


def beyond_starter(checks: list[dict[str, Any]], starter: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Each check worth only what a submission does beyond the challenge's starter code: a check the starter passes
    earns nothing, one it partly passes is worth the part it fails (`starter_points` records what it had). The
    unchanged starter therefore scores 0, and a full solution still scores every point left."""
    given = {check["name"]: check["points"] for check in starter or []}
    out = []
    for check in checks:
        base = given.get(check["name"], 0.0)
        if base <= 0:
            out.append(check)
            continue
        max_points = round(max(0.0, check["max_points"] - base), 4)
        points = round(min(max(0.0, check["points"] - base), max_points), 4)
        out.append({**check, "points": points, "max_points": max_points, "starter_points": round(base, 4)})
    return out


@functools.lru_cache(maxsize=64)
def load_suite(checks_source: str) -> CheckSuite:
    """Parse a checks.py (trusted content written by instructors) into its probe and judge halves."""
    head, sep, _tail = checks_source.partition("\n" + JUDGE_MARKER)
    if not sep:
        raise ChecksError(f"checks.py has no line starting with {JUDGE_MARKER!r}")
    namespace: dict[str, Any] = {"__name__": "hidden_checks"}
    try:
        exec(compile(checks_source, "checks.py", "exec"), namespace)  # noqa: S102 - trusted instructor content
    except Exception as exc:  # noqa: BLE001
        raise ChecksError(f"checks.py does not load: {type(exc).__name__}: {exc}") from exc
    for name in ("probe", "judge", "CHECKS", "JUDGES"):
        if name not in namespace:
            raise ChecksError(f"checks.py defines no {name}")
    digest = hashlib.sha256(checks_source.encode()).hexdigest()[:16]
    return CheckSuite(probe_source=head + "\n", namespace=namespace, digest=digest)
