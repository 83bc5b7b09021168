"""Hidden checks for `resnet-block-stride` (BasicBlock(in_channels, out_channels, stride=1)).

Two halves. The probe (above the judge marker) is sent into the sandbox and runs on the submission: it only
measures. The judge (below the marker) runs on the grading worker, compares the measurements with the reference
solution's measurements and writes the feedback; expected values never enter the sandbox.
"""

import math

ENTRY = "BasicBlock"
# (in_channels, out_channels, stride, N, H, W)
SHAPE_CONFIGS = [
    (16, 16, 1, 2, 8, 8),
    (16, 32, 1, 2, 8, 8),
    (16, 32, 2, 2, 8, 8),
    (16, 16, 2, 2, 9, 9),
    (8, 16, 2, 1, 7, 5),
    (32, 16, 1, 3, 6, 6),
]
MATCH_CONFIGS = [(16, 32, 2, 2, 9, 9), (16, 16, 1, 2, 8, 8), (16, 16, 2, 2, 6, 6)]

# Warms the sandbox's kernels before a submission arrives. Deliberately not a solution (the shortcut is always a
# projection and the last ReLU is missing): nothing correct is ever left in a sandbox's memory.
WARMUP_SOURCE = """
import torch.nn as nn


class BasicBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
                               nn.BatchNorm2d(out_channels), nn.ReLU(),
                               nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False), nn.BatchNorm2d(out_channels))
        self.s = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                               nn.BatchNorm2d(out_channels))

    def forward(self, x):
        return self.a(x) + self.s(x)
"""


# --- probe: runs inside the sandbox, after the submission has been executed. It measures; it never judges. ---
# === include: probe_helpers.py


def _shapes(cls, device, mode):
    import torch

    out = []
    for cin, cout, stride, n, h, w in SHAPE_CONFIGS:
        def one(cin=cin, cout=cout, stride=stride, n=n, h=h, w=w):
            torch.manual_seed(0)
            block = cls(cin, cout, stride=stride).to(device)
            block.train(mode == "train")
            with torch.no_grad():
                y = block(_seeded((n, cin, h, w), 11, device))
            return {"shape": list(y.shape), "finite": bool(torch.isfinite(y).all())}

        out.append(_guard(one))
    return out


def _matches(cls, device):
    import torch

    out = []
    for cin, cout, stride, n, h, w in MATCH_CONFIGS:
        def one(cin=cin, cout=cout, stride=stride, n=n, h=h, w=w):
            block = _fill(cls(cin, cout, stride=stride).to(device)).train()
            with torch.no_grad():
                return _summary(block(_seeded((n, cin, h, w), 12, device)))

        out.append(_guard(one))
    return out


def _shortcut(cls, device, cin, cout, stride):
    import torch

    block = cls(cin, cout, stride=stride).to(device)
    specs = _conv_specs(block)
    _fill(block).train()
    _zero_convs(block, (3, 3))
    with torch.no_grad():
        y = block(_seeded((2, cin, 8, 8), 23, device))
    return {"convs": specs, "zeroed": _summary(y)}


def probe(ns, device):
    """Measure the submission's `BasicBlock` (called by the sandbox runner with the submission's namespace)."""
    import torch.nn as nn

    cls = ns.get(ENTRY)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        return {"defined": False, "undefined_reason": f"`{ENTRY}` must be a class deriving from nn.Module."}
    return {
        "defined": True,
        "shapes": _shapes(cls, device, "train"),
        "eval": _shapes(cls, device, "eval"),
        "matches": _matches(cls, device),
        "identity": _guard(_shortcut, cls, device, 16, 16, 1),
        "stride": _guard(_shortcut, cls, device, 16, 16, 2),
        "projection": _guard(_shortcut, cls, device, 16, 32, 1),
        "gradient": _guard(_grad_flow, cls, (16, 16), 20, (2, 16, 8, 8), device),
        "params": _guard(lambda: {"count": _n_params(cls(64, 128, 2)), "bn": sum(
            isinstance(m, nn.BatchNorm2d) for m in cls(64, 128, 2).modules())}),
        "determinism": _guard(_deterministic, cls, (16, 32), (2, 16, 6, 6), device),
    }


# === judge: runs on the worker, never inside the sandbox (pure Python; the expected values live only here) ===

# === include: judge_helpers.py


def _kind(cin, cout, stride):
    if stride != 1 and cin == cout:
        return "stride 2 and equal channel counts"
    if stride != 1:
        return "stride 2 and more channels"
    return "equal channel counts" if cin == cout else "different channel counts"


def _expected(cin, cout, stride, n, h, w):
    return [n, cout, -(-h // stride), -(-w // stride)]


def _judge_shapes(m, what):
    ok, feedback = 0, []
    for cfg, got in zip(SHAPE_CONFIGS, m, strict=True):
        kind = _kind(*cfg[:3])
        if _failed(got):
            feedback.append(_raised(got, f"{what} with {kind}"))
        elif got.get("shape") != _expected(*cfg):
            feedback.append(f"{what} with {kind} returned the wrong shape: expected (N, out_channels, ceil(H / "
                            "stride), ceil(W / stride)).")
        elif not got.get("finite"):
            feedback.append(f"{what} with {kind} returned values that are not finite.")
        else:
            ok += 1
    hint = (" The shortcut must produce the same shape as the main path: a 1x1 convolution with the block's stride "
            "when the stride or the channel count changes.")
    return ok / len(SHAPE_CONFIGS), " ".join(dict.fromkeys(feedback)) + (hint if ok < len(SHAPE_CONFIGS) else "")


def _j_shapes(m, ref):
    return _judge_shapes(m, "A block (train mode)")


def _j_eval(m, ref):
    return _judge_shapes(m, "A block in eval() mode")


def _j_matches(m, ref):
    ok = sum(1 for got, want in zip(m, ref, strict=True) if not _failed(got) and _close(got, want))
    return ok / len(MATCH_CONFIGS), (
        "On fixed weights your block's output differs from conv3x3(stride) -> BatchNorm2d -> ReLU -> conv3x3 -> "
        "BatchNorm2d, plus the shortcut, then ReLU. Check the order of the layers, that only the first 3x3 "
        "convolution carries the stride, and the BatchNorm2d after the shortcut's 1x1 convolution.")


def _one_by_one(m):
    return [c for c in m.get("convs", []) if c.get("k") == [1, 1]]


def _j_identity(m, ref):
    if _failed(m):
        return 0.0, _raised(m, "A block with stride 1 and equal channel counts")
    if _one_by_one(m):
        return 0.0, "With stride 1 and equal channel counts the shortcut must be the identity (no convolution)."
    if not _close(m.get("zeroed"), ref.get("zeroed")):
        return 0.0, ("With its 3x3 convolutions zeroed, a block with stride 1 and equal channel counts should pass "
                     "its input through the identity shortcut; yours did not.")
    return 1.0, ""


def _j_stride(m, ref):
    if _failed(m):
        return 0.0, _raised(m, "A block with stride 2 and equal channel counts") + (
            " The shortcut has to downsample too: a 1x1 convolution with stride 2 (and BatchNorm2d).")
    convs = _one_by_one(m)
    if not any(c.get("stride") == [2, 2] for c in convs):
        return 0.0, ("With stride 2 the shortcut must downsample: a 1x1 convolution with stride 2, even when the "
                     "channel counts match.")
    if not _close(m.get("zeroed"), ref.get("zeroed")):
        return 0.0, ("With its 3x3 convolutions zeroed, a downsampling block should return relu(main + BN(conv1x1 "
                     "(x))); yours did not: is there a BatchNorm2d after the shortcut's convolution?")
    return 1.0, ""


def _j_projection(m, ref):
    if _failed(m):
        return 0.0, _raised(m, "A block with different channel counts")
    if not any(c.get("stride") == [1, 1] for c in _one_by_one(m)):
        return 0.0, "When only the channel count changes, the shortcut needs a 1x1 convolution with stride 1."
    if not _close(m.get("zeroed"), ref.get("zeroed")):
        return 0.0, ("With its 3x3 convolutions zeroed, a block whose channel count changes should return "
                     "relu(main + BN(conv1x1(x))); yours did not.")
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
    if m.get("bn") != ref.get("bn"):
        return 0.0, ("A downsampling block has three BatchNorm2d layers: after each 3x3 convolution and after the "
                     "shortcut's 1x1 convolution.")
    if not _num(n) or not _num(r) or abs(n - r) > 0.01 * r:
        return 0.0, "The block's parameter count is off: convolutions without bias, each followed by BatchNorm2d."
    return 1.0, ""


CHECKS = [
    ("shapes", "Output shape for several strides, channel counts and sizes", 2.0),
    ("eval", "Works in eval() mode", 1.0),
    ("matches", "Same output as the specified block on fixed weights", 2.0),
    ("identity", "Identity shortcut when nothing changes", 1.0),
    ("stride", "Downsampling shortcut when the stride is 2", 2.0),
    ("projection", "Projection shortcut when the channel count changes", 1.0),
    ("gradient", "Gradient flow through a deep stack of blocks", 1.0),
    ("params", "Parameter count and batch norm layers", 1.0),
    ("determinism", "Same seed, same block, same output", 1.0),
]
JUDGES = {
    "shapes": _j_shapes,
    "eval": _j_eval,
    "matches": _j_matches,
    "identity": _j_identity,
    "stride": _j_stride,
    "projection": _j_projection,
    "gradient": _j_gradient,
    "params": _j_params,
    "determinism": _j_determinism,
}
