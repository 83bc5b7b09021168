"""Probe helpers shared by the ResNet block challenges: included into each checks.py above its judge marker,
so they run inside the sandbox. They measure; they never judge."""

import math

SUMMARY_SEED = 9157


def _error(exc):
    """An exception, as the judge sees it (type and a short message; the judge decides what the student sees)."""
    return {"error": type(exc).__name__, "message": str(exc)[:300]}


def _summary(t):
    """A tensor's fingerprint: shape, finiteness, sums and three fixed random projections (float64, on the CPU)."""
    import torch

    t = t.detach().to("cpu", torch.float64)
    flat = t.flatten()
    g = torch.Generator().manual_seed(SUMMARY_SEED)
    w = torch.randn(3, flat.numel(), generator=g, dtype=torch.float64)
    finite = bool(torch.isfinite(flat).all())
    return {
        "shape": list(t.shape),
        "finite": finite,
        "sum": float(flat.sum()) if finite else 0.0,
        "sumsq": float((flat * flat).sum()) if finite else 0.0,
        "proj": [float(v) for v in (w @ flat)] if finite else [0.0, 0.0, 0.0],
    }


def _fill(module):
    """Weights that depend only on each parameter's shape: equal architectures agree whatever their names/order."""
    import torch

    with torch.no_grad():
        for p in module.parameters():
            shape = tuple(p.shape)
            seed = 1 + sum((i + 1) * 7919 * d for i, d in enumerate(shape)) % 2**31
            v = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float32)
            if p.dim() > 1:
                v = v * math.sqrt(2.0 / max(1, p[0].numel()))
            else:
                v = 0.5 + 0.25 * v
            p.copy_(v.to(p.device, p.dtype))
    return module


def _seeded(shape, seed, device):
    import torch

    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(device)


def _convs(module):
    import torch.nn as nn

    return [m for m in module.modules() if isinstance(m, nn.Conv2d)]


def _conv_specs(module):
    return [
        {"in": m.in_channels, "out": m.out_channels, "k": list(m.kernel_size), "stride": list(m.stride)}
        for m in _convs(module)
    ]


def _zero_convs(module, kernel):
    import torch

    with torch.no_grad():
        for m in _convs(module):
            if tuple(m.kernel_size) == kernel or kernel is None:
                m.weight.zero_()
                if m.bias is not None:
                    m.bias.zero_()


def _n_params(module):
    return int(sum(p.numel() for p in module.parameters()))


def _guard(fn, *args):
    try:
        return fn(*args)
    except Exception as exc:  # the submission's failure, reported to the judge
        return _error(exc)


def _grad_flow(cls, args, depth, x_shape, device):
    import torch

    torch.manual_seed(5)
    stack = torch.nn.Sequential(*[cls(*args) for _ in range(depth)]).to(device)
    _fill(stack)
    stack.train()
    x = _seeded(x_shape, 77, device).requires_grad_(True)
    out = stack(x)
    out.pow(2).mean().backward()
    g = x.grad
    norm = float(g.detach().double().norm()) if g is not None else None
    first = [p.grad for p in stack[0].parameters()]
    return {
        "input_grad": norm,
        "first_block_grad": all(gp is not None and bool(gp.abs().sum() > 0) for gp in first) if first else False,
    }


def _deterministic(cls, args, x_shape, device):
    import torch

    outs = []
    for _ in range(2):
        torch.manual_seed(1234)
        block = cls(*args).to(device)
        block.train()
        outs.append(_summary(block(_seeded(x_shape, 4321, device))))
    return {"first": outs[0], "second": outs[1]}
