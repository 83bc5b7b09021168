import torch
import torch.nn as nn


def make_layers(depth: int, width: int = 32) -> nn.ModuleList:
    return nn.ModuleList(nn.Sequential(nn.Linear(width, width), nn.Tanh()) for _ in range(depth))


class Net(nn.Module):
    def __init__(self, depth: int, residual: bool, width: int = 32):
        super().__init__()
        self.residual = residual
        self.hidden = make_layers(depth, width)
        self.head = nn.Linear(width, 1)

    def forward(self, x):
        for layer in self.hidden:
            x = x + layer(x) if self.residual else layer(x)
        return self.head(x)


def train(net: nn.Module, x, y, steps: int) -> tuple[list[float], float]:
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    losses, grad_norm = [], 0.0
    for step in range(steps):
        opt.zero_grad()
        loss = nn.functional.mse_loss(net(x), y)
        loss.backward()
        if step == 0:
            grad_norm = float(net.hidden[0][0].weight.grad.norm())
        losses.append(float(loss.detach()))
        opt.step()
    return losses, grad_norm


def run_experiment(depth: int, steps: int, seed: int) -> dict:
    torch.manual_seed(seed)
    x = torch.randn(256, 32)
    target = nn.Linear(32, 1)
    with torch.no_grad():
        y = torch.sin(target(x)) * 2
    torch.manual_seed(seed + 1)
    plain = Net(depth, residual=False)
    torch.manual_seed(seed + 1)
    residual = Net(depth, residual=True)
    plain_losses, plain_grad = train(plain, x, y, steps)
    residual_losses, residual_grad = train(residual, x, y, steps)
    return {
        "plain": plain_losses,
        "residual": residual_losses,
        "plain_grad_norm": plain_grad,
        "residual_grad_norm": residual_grad,
    }


if __name__ == "__main__":
    result = run_experiment(depth=20, steps=50, seed=0)
    print(result["plain"][-1:], result["residual"][-1:], result["plain_grad_norm"], result["residual_grad_norm"])
