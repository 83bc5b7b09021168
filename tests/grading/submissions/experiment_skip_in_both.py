# A typical mistake: skip connections in both networks, so the "plain" one is not plain.
import torch
import torch.nn as nn


def run_experiment(depth, steps, seed):
    torch.manual_seed(seed)
    x = torch.randn(256, 32)
    y = torch.sin(x.sum(dim=1, keepdim=True))
    results = {}
    for name in ("plain", "residual"):
        torch.manual_seed(seed + 1)
        layers = nn.ModuleList(nn.Sequential(nn.Linear(32, 32), nn.Tanh()) for _ in range(depth))
        head = nn.Linear(32, 1)
        params = list(layers.parameters()) + list(head.parameters())
        opt = torch.optim.SGD(params, lr=0.01)
        losses = []
        grad = 0.0
        for step in range(steps):
            opt.zero_grad()
            h = x
            for layer in layers:
                h = h + layer(h)
            loss = nn.functional.mse_loss(head(h), y)
            loss.backward()
            if step == 0:
                grad = float(layers[0][0].weight.grad.norm())
            losses.append(float(loss.detach()))
            opt.step()
        results[name] = losses
        results[name + "_grad_norm"] = grad
    return results
