"""Hidden checks for `bottleneck-block` (Bottleneck(in_channels, mid_channels, stride=1), expansion 4).

Two halves. The probe (above the judge marker) is sent into the sandbox and runs on the submission: it only
measures. The judge (below the marker) runs on the grading worker, compares the measurements with the reference
solution's measurements and writes the feedback; expected values never enter the sandbox.
"""

import math

ENTRY = "Bottleneck"
# (in_channels, mid_channels, stride, N, H, W)
SHAPE_CONFIGS = [
    (64, 16, 1, 2, 6, 6),
    (32, 16, 1, 2, 6, 6),
    (64, 16, 2, 2, 9, 9),
    (16, 8, 2, 1, 8, 6),
    (128, 16, 1, 1, 5, 5),
]
MATCH_CONFIGS = [(32, 16, 2, 2, 7, 7), (64, 16, 1, 2, 6, 6)]

# Warms the sandbox's kernels before a submission arrives. Deliberately not a solution (the shortcut is always a
# projection and the last ReLU is missing): nothing correct is ever left in a sandbox's memory.
WARMUP_SOURCE = """
import torch.nn as nn


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_channels, mid_channels, stride=1):
        super().__init__()
        out = 4 * mid_channels
        self.a = nn.Sequential(nn.Conv2d(in_channels, mid_channels, 1, bias=False), nn.BatchNorm2d(mid_channels),
                               nn.ReLU(), nn.Conv2d(mid_channels, mid_channels, 3, stride, 1, bias=False),
                               nn.BatchNorm2d(mid_channels), nn.ReLU(), nn.Conv2d(mid_channels, out, 1, bias=False),
                               nn.BatchNorm2d(out))
        self.s = nn.Sequential(nn.Conv2d(in_channels, out, 1, stride, bias=False), nn.BatchNorm2d(out))

    def forward(self, x):
        return self.a(x) + self.s(x)
"""


# --- probe: runs inside the sandbox, after the submission has been executed. It measures; it never judges. ---
# === include: probe_helpers.py


def _shapes(cls, device):
    import torch

    out = []
    for cin, mid, stride, n, h, w in SHAPE_CONFIGS:
        def one(cin=cin, mid=mid, stride=stride, n=n, h=h, w=w):
            torch.manual_seed(0)
            block = cls(cin, mid, stride=stride).to(device).train()
            with torch.no_grad():
                y = block(_seeded((n, cin, h, w), 11, device))
            return {"shape": list(y.shape), "finite": bool(torch.isfinite(y).all())}

        out.append(_guard(one))
    return out


def _matches(cls, device):
    import torch

    out = []
    for cin, mid, stride, n, h, w in MATCH_CONFIGS:
        def one(cin=cin, mid=mid, stride=stride, n=n, h=h, w=w):
            block = _fill(cls(cin, mid, stride=stride).to(device)).train()
            with torch.no_grad():
                return _summary(block(_seeded((n, cin, h, w), 12, device)))

        out.append(_guard(one))
    return out


def _structure(cls, device, cin, mid, stride):
    import torch

    block = cls(cin, mid, stride=stride).to(device)
    specs = _conv_specs(block)
    _fill(block).train()
    _zero_convs(block, None)
    with torch.no_grad():
        y = block(_seeded((2, cin, 6, 6), 23, device))
    return {"convs": specs, "zeroed": _summary(y)}


def probe(ns, device):
    """Measure the submission's `Bottleneck` (called by the sandbox runner with the submission's namespace)."""
    import torch.nn as nn

    cls = ns.get(ENTRY)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        return {"defined": False, "undefined_reason": f"`{ENTRY}` must be a class deriving from nn.Module."}
    expansion = getattr(cls, "expansion", None)
    return {
        "defined": True,
        "expansion": {"value": expansion if isinstance(expansion, int) and not isinstance(expansion, bool) else None},
        "shapes": _shapes(cls, device),
        "matches": _matches(cls, device),
        "identity": _guard(_structure, cls, device, 64, 16, 1),
        "projection": _guard(_structure, cls, device, 32, 16, 2),
        "gradient": _guard(_grad_flow, cls, (64, 16), 12, (2, 64, 6, 6), device),
        "params": _guard(lambda: {"count": _n_params(cls(256, 64)), "bn": sum(
            isinstance(m, nn.BatchNorm2d) for m in cls(256, 64).modules())}),
        "determinism": _guard(_deterministic, cls, (32, 8), (2, 32, 6, 6), device),
    }


# === judge: runs on the worker, never inside the sandbox (pure Python; the expected values live only here) ===

# === include: judge_helpers.py


def _kind(cin, mid, stride):
    if stride != 1:
        return "stride 2"
    return "in_channels == 4 * mid_channels" if cin == 4 * mid else "in_channels != 4 * mid_channels"


def _j_expansion(m, ref):
    if m.get("value") != 4:
        return 0.0, "Bottleneck.expansion must be the class attribute 4 (the output has 4 * mid_channels channels)."
    return 1.0, ""


def _j_shapes(m, ref):
    ok, feedback = 0, []
    for (cin, mid, stride, n, h, w), got in zip(SHAPE_CONFIGS, m, strict=True):
        kind = _kind(cin, mid, stride)
        want = [n, 4 * mid, -(-h // stride), -(-w // stride)]
        if _failed(got):
            feedback.append(_raised(got, f"A block with {kind}"))
        elif got.get("shape") != want:
            wrong_c = isinstance(got.get("shape"), list) and len(got["shape"]) == 4 and got["shape"][1] != want[1]
            feedback.append(f"A block with {kind} returned the wrong shape" + (
                ": the output must have 4 * mid_channels channels (expansion 4)." if wrong_c else "."))
        elif not got.get("finite"):
            feedback.append(f"A block with {kind} returned values that are not finite.")
        else:
            ok += 1
    return ok / len(SHAPE_CONFIGS), " ".join(dict.fromkeys(feedback)) + (
        " Expected (N, 4 * mid_channels, ceil(H / stride), ceil(W / stride))." if ok < len(SHAPE_CONFIGS) else "")


def _j_matches(m, ref):
    ok = sum(1 for got, want in zip(m, ref, strict=True) if not _failed(got) and _close(got, want))
    return ok / len(MATCH_CONFIGS), (
        "On fixed weights your block's output differs from the specified bottleneck: 1x1 -> BN -> ReLU, 3x3 "
        "(stride) -> BN -> ReLU, 1x1 (to 4 * mid_channels) -> BN, plus the shortcut, then ReLU. Only the 3x3 "
        "convolution carries the stride.")


def _one_by_one_shortcut(m, stride):
    return [c for c in m.get("convs", []) if c.get("k") == [1, 1] and c.get("stride") == [stride, stride]]


def _j_identity(m, ref):
    if _failed(m):
        return 0.0, _raised(m, "A block with in_channels == 4 * mid_channels")
    convs = m.get("convs", [])
    if len(convs) != 3:
        return 0.0, ("With stride 1 and in_channels == 4 * mid_channels the block has exactly three convolutions "
                     "(1x1, 3x3, 1x1) and an identity shortcut.")
    if not _close(m.get("zeroed"), ref.get("zeroed")):
        return 0.0, ("With all its convolutions zeroed, a block with an identity shortcut should return relu(x + "
                     "BN bias); yours did not: is the input added unchanged?")
    return 1.0, ""


def _j_projection(m, ref):
    if _failed(m):
        return 0.0, _raised(m, "A downsampling block") + (
            " The shortcut needs a 1x1 convolution to 4 * mid_channels with the block's stride.")
    if not _one_by_one_shortcut(m, 2):
        return 0.0, ("With stride 2 the shortcut must be a 1x1 convolution with stride 2 (to 4 * mid_channels), "
                     "followed by BatchNorm2d.")
    if (m.get("zeroed") or {}).get("shape") != (ref.get("zeroed") or {}).get("shape"):
        return 0.0, ("A downsampling block returned the wrong shape: 4 * mid_channels channels, the size divided by "
                     "the stride.")
    if not _close(m.get("zeroed"), ref.get("zeroed")):
        return 0.0, ("With all its convolutions zeroed, a downsampling block should return relu(BN bias of the main "
                     "path + BN bias of the shortcut); yours did not: is there a BatchNorm2d after the projection?")
    return 1.0, ""


def _j_gradient(m, ref):
    if _failed(m):
        return 0.0, _raised(m, "A deep stack of your blocks")
    g, r = m.get("input_grad"), ref.get("input_grad")
    if not _num(g) or g <= 0:
        return 0.0, "Through a deep stack of your blocks no finite gradient reached the input."
    if not m.get("first_block_grad"):
        return 0.0, "Some parameters of the first block of a deep stack received no gradient."
    if _num(r) and r > 0 and not (r / 10 <= g <= r * 10):
        return 0.0, ("The gradient reaching the input through a deep stack of your blocks is "
                     + ("far too small: is the shortcut added in forward()?" if g < r else "far too large."))
    return 1.0, ""


def _j_params(m, ref):
    if _failed(m):
        return 0.0, _raised(m, "Building a block")
    n, r = m.get("count"), ref.get("count")
    if not _num(n) or not _num(r) or abs(n - r) > 0.01 * r:
        return 0.0, ("The block's parameter count is off: 1x1 (in -> mid), 3x3 (mid -> mid), 1x1 (mid -> 4 * mid), "
                     "convolutions without bias, each followed by BatchNorm2d; no projection when the shape is kept.")
    if m.get("bn") != ref.get("bn"):
        return 0.0, "Each of the three convolutions of the main path is followed by a BatchNorm2d."
    return 1.0, ""


CHECKS = [
    ("expansion", "expansion = 4", 1.0),
    ("shapes", "Output shape for several strides, channel counts and sizes", 2.0),
    ("matches", "Same output as the specified bottleneck on fixed weights", 2.0),
    ("identity", "Identity shortcut when the shape is kept", 1.0),
    ("projection", "Projection shortcut with the block's stride", 1.0),
    ("gradient", "Gradient flow through a deep stack of blocks", 1.0),
    ("params", "Parameter count", 1.0),
    ("determinism", "Same seed, same block, same output", 1.0),
]
JUDGES = {
    "expansion": _j_expansion,
    "shapes": _j_shapes,
    "matches": _j_matches,
    "identity": _j_identity,
    "projection": _j_projection,
    "gradient": _j_gradient,
    "params": _j_params,
    "determinism": _j_determinism,
}
