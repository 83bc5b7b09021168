import torch
import torch.nn as nn


def make_layers(depth: int, width: int = 32) -> nn.ModuleList:
    """`depth` hidden layers of the same width (a starting point; change it as you like)."""
    return nn.ModuleList(nn.Sequential(nn.Linear(width, width), nn.Tanh()) for _ in range(depth))


def run_experiment(depth: int, steps: int, seed: int) -> dict:
    """Train a plain deep network and the same network with skip connections; compare losses and gradients."""
    torch.manual_seed(seed)
    # TODO: synthetic data, e.g. x = torch.randn(256, 32) and a fixed random target function of x
    # TODO: a plain network (x = layer(x) for each layer) and the same network with x = x + layer(x)
    # TODO: train both for `steps` steps with the same optimiser; record the loss before each step and the
    #       gradient norm of the first hidden layer's weight at the first step
    return {"plain": [], "residual": [], "plain_grad_norm": 0.0, "residual_grad_norm": 0.0}


if __name__ == "__main__":
    result = run_experiment(depth=20, steps=50, seed=0)
    print(result["plain"][-1:], result["residual"][-1:], result["plain_grad_norm"], result["residual_grad_norm"])
