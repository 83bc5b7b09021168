"""Judge helpers shared by the ResNet block challenges: included into each checks.py below its judge marker,
so they run on the worker only. `judge` reads the including file's CHECKS, JUDGES and ENTRY."""

import math


def _num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _failed(m):
    return not isinstance(m, dict) or "error" in m


def _close(a, b, rel=2e-3, tol=1e-3):
    """Two `_summary` fingerprints describe the same tensor (up to float32 reduction order)."""
    if not isinstance(a, dict) or not isinstance(b, dict) or a.get("shape") != b.get("shape"):
        return False
    if a.get("finite") is not True or b.get("finite") is not True:
        return False
    pairs = [(a.get("sum"), b.get("sum")), (a.get("sumsq"), b.get("sumsq"))]
    pa, pb = a.get("proj"), b.get("proj")
    if not isinstance(pa, list) or not isinstance(pb, list) or len(pa) != 3 or len(pb) != 3:
        return False
    pairs += list(zip(pa, pb, strict=True))
    scale = max(1.0, abs(b.get("sumsq") or 0.0) ** 0.5)
    return all(_num(x) and _num(y) and abs(x - y) <= tol * scale + rel * max(abs(x), abs(y)) for x, y in pairs)


def _raised(m, what):
    """Feedback for a measurement that raised: the exception's type, never the hidden input."""
    return f"{what} raised {m.get('error', 'an error')}." if isinstance(m, dict) else f"{what} failed."


def judge(measurements, reference):
    """Turn the sandbox's measurements into checks: [{name, passed, points, max_points, feedback}, ...]."""
    results = []
    m = measurements if isinstance(measurements, dict) else {}
    ref = reference if isinstance(reference, dict) else {}
    for key, title, weight in CHECKS:
        if not m.get("defined"):
            fraction, feedback = 0.0, m.get("undefined_reason") or f"`{ENTRY}` is not defined by your code."
        else:
            try:
                fraction, feedback = JUDGES[key](m.get(key), ref.get(key))
            except Exception:  # a malformed (or forged) measurement fails its check, nothing else
                fraction, feedback = 0.0, "This check could not read your code's results."
        fraction = max(0.0, min(1.0, float(fraction)))
        results.append(
            {
                "name": title,
                "passed": fraction >= 1.0,
                "points": round(weight * fraction, 4),
                "max_points": weight,
                "feedback": "" if fraction >= 1.0 else feedback,
            }
        )
    return results


def artifacts(measurements):
    """Extra results for the feedback page (none for the block challenges)."""
    return {}


def _j_determinism(m, ref):
    if _failed(m):
        return 0.0, _raised(m, "Building and running a block")
    if not _close(m.get("first"), m.get("second"), rel=1e-6, tol=1e-7):
        return 0.0, "Two blocks built after the same torch.manual_seed gave different outputs for the same input."
    return 1.0, ""
