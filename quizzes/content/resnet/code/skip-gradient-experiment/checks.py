"""Hidden checks for `skip-gradient-experiment` (run_experiment(depth, steps, seed) -> dict).

Two halves. The probe (above the judge marker) is sent into the sandbox and runs on the submission: it only
measures (it calls the experiment three times, small). The judge (below the marker) runs on the grading worker.
"""

import math

ENTRY = "run_experiment"
DEPTH, STEPS, SEED = 12, 30, 7
MAX_POINTS_KEPT = 1000
# The experiment's results do not depend on a reference implementation: the judge needs no reference run.
NEEDS_REFERENCE = False


# Warms the sandbox's kernels before a submission arrives. Deliberately not a solution (no skip connections).
WARMUP_SOURCE = """
import torch
import torch.nn as nn


def run_experiment(depth, steps, seed):
    torch.manual_seed(seed)
    x, y = torch.randn(256, 32), torch.randn(256, 1)
    net = nn.Sequential(*[nn.Sequential(nn.Linear(32, 32), nn.Tanh()) for _ in range(depth)], nn.Linear(32, 1))
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.mse_loss(net(x), y)
        loss.backward()
        losses.append(float(loss.detach()))
        opt.step()
    g = float(net[0][0].weight.grad.norm())
    return {"plain": losses, "residual": losses, "plain_grad_norm": g, "residual_grad_norm": g}
"""


def _error(exc):
    return {"error": type(exc).__name__, "message": str(exc)[:300]}


def _floats(values):
    """A list of floats (None for anything that is not a real number), or None when it is not a list."""
    if not isinstance(values, (list, tuple)):
        return None
    out = []
    for v in list(values)[:MAX_POINTS_KEPT]:
        try:
            f = float(v)
        except (TypeError, ValueError, RuntimeError):
            f = None
        out.append(f if f is not None and math.isfinite(f) else None)
    return out


def _run(fn, seed):
    try:
        result = fn(depth=DEPTH, steps=STEPS, seed=seed)
    except Exception as exc:  # the submission's failure, reported to the judge
        return _error(exc)
    if not isinstance(result, dict):
        return {"error": "NotADict", "message": type(result).__name__}
    out = {"keys": sorted(str(k) for k in result)[:20]}
    for key in ("plain", "residual"):
        values = result.get(key)
        out[key] = _floats(values)
        out[key + "_len"] = len(values) if isinstance(values, (list, tuple)) else None
    for key in ("plain_grad_norm", "residual_grad_norm"):
        out[key] = (_floats([result.get(key)]) or [None])[0]
    return out


def probe(ns, device):
    """Run the submission's experiment twice with the hidden seed and once with another seed."""
    fn = ns.get(ENTRY)
    if not callable(fn):
        return {"defined": False, "undefined_reason": f"`{ENTRY}` must be a function."}
    return {"defined": True, "first": _run(fn, SEED), "again": _run(fn, SEED), "other": _run(fn, SEED + 1)}


# === judge: runs on the worker, never inside the sandbox (pure Python) ===
KEYS = ["plain", "plain_grad_norm", "residual", "residual_grad_norm"]


def _usable(r):
    return isinstance(r, dict) and "error" not in r


def _j_returns(m):
    r = m.get("first")
    if not _usable(r):
        if isinstance(r, dict) and r.get("error") == "NotADict":
            return 0.0, "run_experiment must return a dict."
        return 0.0, f"run_experiment raised {(r or {}).get('error', 'an error')}."
    missing = [k for k in KEYS if k not in (r.get("keys") or [])]
    if missing:
        return 0.0, "The returned dict lacks: " + ", ".join(missing) + "."
    return 1.0, ""


def _j_curves(m):
    r = m.get("first")
    if not _usable(r):
        return 0.0, "No loss curves: run_experiment did not return a result."
    for key in ("plain", "residual"):
        if r.get(key + "_len") != STEPS:
            return 0.0, f"result['{key}'] must hold one loss per step: its length must equal `steps`."
        if any(v is None for v in r.get(key) or [None]):
            return 0.0, f"Every loss in result['{key}'] must be a finite float."
    return 1.0, ""


def _j_residual_lower(m):
    r = m.get("first")
    if not _usable(r) or not r.get("plain") or not r.get("residual"):
        return 0.0, "No loss curves to compare."
    p, q = r["plain"][-1], r["residual"][-1]
    if p is None or q is None or not q < p:
        return 0.0, ("The residual network's final loss should be lower than the plain network's: are the skip "
                     "connections (x = x + layer(x)) only in the residual network, with the same depth and optimiser?")
    return 1.0, ""


def _j_learning(m):
    r = m.get("first")
    if not _usable(r) or not r.get("residual"):
        return 0.0, "No loss curves to compare."
    first, last = r["residual"][0], r["residual"][-1]
    if first is None or last is None or not last < first:
        return 0.0, "The residual network's loss did not fall during training: record the loss before each step."
    return 1.0, ""


def _j_grads(m):
    r = m.get("first")
    if not _usable(r):
        return 0.0, "No gradient norms."
    p, q = r.get("plain_grad_norm"), r.get("residual_grad_norm")
    if p is None or q is None or p <= 0 or q <= 0:
        return 0.0, "The gradient norms must be positive finite floats (the first hidden layer's weight gradient)."
    if not q > p:
        return 0.0, ("The residual network's first-layer gradient should be larger than the plain network's: "
                     "measure it after the first backward pass, before the optimiser step.")
    return 1.0, ""


def _j_deterministic(m):
    a, b = m.get("first"), m.get("again")
    if not _usable(a) or not _usable(b):
        return 0.0, "run_experiment did not return a result twice."
    if any(a.get(k) != b.get(k) for k in KEYS):
        return 0.0, "Two calls with the same seed returned different numbers: call torch.manual_seed(seed) first."
    c = m.get("other")
    if not _usable(c) or all(a.get(k) == c.get(k) for k in KEYS):
        return 0.5, "A different seed should give different numbers: use the `seed` argument."
    return 1.0, ""


CHECKS = [
    ("returns", "Returns the four results", 1.0),
    ("curves", "One finite loss per step for each network", 1.0),
    ("learning", "The residual network learns", 1.0),
    ("residual_lower", "Residual network ends with the lower loss", 2.0),
    ("grads", "Residual network has the larger first-layer gradient", 2.0),
    ("deterministic", "Seeded: same seed, same numbers", 1.0),
]
JUDGES = {
    "returns": _j_returns,
    "curves": _j_curves,
    "learning": _j_learning,
    "residual_lower": _j_residual_lower,
    "grads": _j_grads,
    "deterministic": _j_deterministic,
}


def judge(measurements, reference):
    """Turn the sandbox's measurements into checks: [{name, passed, points, max_points, feedback}, ...]."""
    m = measurements if isinstance(measurements, dict) else {}
    results = []
    for key, title, weight in CHECKS:
        if not m.get("defined"):
            fraction, feedback = 0.0, m.get("undefined_reason") or f"`{ENTRY}` is not defined by your code."
        else:
            try:
                fraction, feedback = JUDGES[key](m)
            except Exception:  # a malformed (or forged) measurement fails its check, nothing else
                fraction, feedback = 0.0, "This check could not read your experiment's results."
        fraction = max(0.0, min(1.0, float(fraction)))
        results.append({"name": title, "passed": fraction >= 1.0, "points": round(weight * fraction, 4),
                        "max_points": weight, "feedback": "" if fraction >= 1.0 else str(feedback)})
    return results


def artifacts(measurements):
    """The two loss curves of the hidden-seed run, for the feedback page's chart."""
    r = (measurements or {}).get("first") if isinstance(measurements, dict) else None
    if not _usable(r):
        return {}
    return {
        "loss_curves": {
            "title": f"Training loss, depth {DEPTH}",
            "x_label": "step",
            "y_label": "loss",
            "series": {"plain": r.get("plain") or [], "residual": r.get("residual") or []},
            "grad_norms": {"plain": r.get("plain_grad_norm"), "residual": r.get("residual_grad_norm")},
        }
    }
