"""Hidden checks for `resnet-block-projection` (ResNetBlock(in_channels, out_channels)).

Two halves. The probe (above the judge marker) is sent into the sandbox and runs on the submission: it only
measures. The judge (below the marker) runs on the grading worker, compares the measurements with the reference
solution's measurements and writes the feedback; expected values never enter the sandbox.
"""

import math

ENTRY = "ResNetBlock"
# (in_channels, out_channels, N, H, W)
SHAPE_CONFIGS = [(64, 128, 2, 8, 8), (64, 64, 2, 8, 8), (16, 32, 1, 5, 7), (32, 16, 3, 6, 6), (8, 8, 1, 3, 3)]

# Warms the sandbox's kernels before a submission arrives. Deliberately not a solution (the skip path is always a
# projection and the last ReLU is missing): nothing correct is ever left in a sandbox's memory.
WARMUP_SOURCE = """
import torch.nn as nn


class ResNetBlock(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.a = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.b = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.s = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x):
        return self.b(self.a(x).relu()) + self.s(x)
"""


# --- probe: runs inside the sandbox, after the submission has been executed. It measures; it never judges. ---
# === include: probe_helpers.py


def _shapes(cls, device):
    import torch

    out = []
    for cin, cout, n, h, w in SHAPE_CONFIGS:
        def one(cin=cin, cout=cout, n=n, h=h, w=w):
            torch.manual_seed(0)
            return {"shape": list(cls(cin, cout).to(device)(_seeded((n, cin, h, w), 11, device)).shape)}

        out.append(_guard(one))
    return out


def _identity(cls, device):
    block = cls(16, 16).to(device)
    specs = _conv_specs(block)
    extra = sum(p.numel() for m in block.modules() for p in m.parameters(recurse=False)
                if not (hasattr(m, "kernel_size") and tuple(m.kernel_size) == (3, 3)))
    _fill(block)
    _zero_convs(block, (3, 3))
    y = block(_seeded((2, 16, 6, 6), 21, device))
    return {"convs": specs, "extra_params": int(extra), "zeroed": _summary(y)}


def _projection(cls, device):
    import torch

    block = cls(16, 32).to(device)
    specs = _conv_specs(block)
    _fill(block)
    _zero_convs(block, (3, 3))
    x = _seeded((2, 16, 6, 6), 22, device)
    y = block(x)
    diffs = []
    for m in _convs(block):
        if tuple(m.kernel_size) == (1, 1) and m.in_channels == 16 and m.out_channels == 32:
            diffs.append(float((y - torch.relu(m(x))).detach().abs().max()))
    return {"convs": specs, "zeroed": _summary(y), "skip_diff": min(diffs) if diffs else None}


def probe(ns, device):
    """Measure the submission's `ResNetBlock` (called by the sandbox runner with the submission's namespace)."""
    import torch.nn as nn

    cls = ns.get(ENTRY)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        return {"defined": False, "undefined_reason": f"`{ENTRY}` must be a class deriving from nn.Module."}
    return {
        "defined": True,
        "shapes": _shapes(cls, device),
        "identity": _guard(_identity, cls, device),
        "projection": _guard(_projection, cls, device),
        "gradient": _guard(_grad_flow, cls, (16, 16), 24, (2, 16, 8, 8), device),
        "params": _guard(lambda: {"count": _n_params(cls(64, 128))}),
        "determinism": _guard(_deterministic, cls, (32, 32), (2, 32, 6, 6), device),
    }


# === judge: runs on the worker, never inside the sandbox (pure Python; the expected values live only here) ===

# === include: judge_helpers.py


def _j_shapes(m, ref):
    ok, feedback = 0, []
    for (cin, cout, n, h, w), got in zip(SHAPE_CONFIGS, m, strict=True):
        kind = "equal channel counts" if cin == cout else "different channel counts"
        if _failed(got):
            feedback.append(_raised(got, f"A block with {kind}"))
        elif got.get("shape") != [n, cout, h, w]:
            feedback.append(f"A block with {kind} returned the wrong shape: expected (N, out_channels, H, W).")
        else:
            ok += 1
    hint = " When the channel counts differ, the skip path must map in_channels to out_channels before the addition."
    return ok / len(SHAPE_CONFIGS), " ".join(dict.fromkeys(feedback)) + (hint if ok < len(SHAPE_CONFIGS) else "")


def _j_identity(m, ref):
    if _failed(m):
        return 0.0, _raised(m, "ResNetBlock with equal channel counts")
    if any(c.get("k") == [1, 1] for c in m.get("convs", [])) or m.get("extra_params") != 0:
        return 0.0, ("When in_channels == out_channels the skip path must be the identity, with no parameters: "
                     "only the two 3x3 convolutions should have weights.")
    if not _close(m.get("zeroed"), ref.get("zeroed")):
        return 0.0, ("With its 3x3 convolutions zeroed, a block with equal channel counts should return relu(x) "
                     "(the input through the identity skip path); yours did not.")
    return 1.0, ""


def _j_projection(m, ref):
    if _failed(m):
        return 0.0, _raised(m, "ResNetBlock with different channel counts") + (
            " The skip path needs a 1x1 convolution from in_channels to out_channels.")
    if m.get("skip_diff") is None:
        return 0.0, "When the channel counts differ, the skip path should be a 1x1 convolution (in -> out channels)."
    if not _num(m["skip_diff"]) or m["skip_diff"] > 1e-4 or (m.get("zeroed") or {}).get("sumsq", 0) <= 0:
        return 0.0, ("With its 3x3 convolutions zeroed, the block should return relu(skip(x)) where skip is the 1x1 "
                     "convolution: add the skip path to the main path, then apply the ReLU.")
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
                     + ("far too small: is the skip connection added in forward()?" if g < r else "far too large."))
    return 1.0, ""


def _j_params(m, ref):
    if _failed(m):
        return 0.0, _raised(m, "Building a block")
    n, r = m.get("count"), ref.get("count")
    if not _num(n) or not _num(r) or abs(n - r) > 0.02 * r:
        return 0.0, ("The block's parameter count is off: two 3x3 convolutions plus a 1x1 projection when the channel "
                     "counts differ, nothing else.")
    return 1.0, ""


CHECKS = [
    ("shapes", "Output shape for several channel counts and image sizes", 2.0),
    ("identity", "Identity skip path when the channel counts match", 2.0),
    ("projection", "1x1 projection on the skip path when the channel counts differ", 2.0),
    ("gradient", "Gradient flow through a deep stack of blocks", 1.0),
    ("params", "Parameter count", 1.0),
    ("determinism", "Same seed, same block, same output", 1.0),
]
JUDGES = {
    "shapes": _j_shapes,
    "identity": _j_identity,
    "projection": _j_projection,
    "gradient": _j_gradient,
    "params": _j_params,
    "determinism": _j_determinism,
}
