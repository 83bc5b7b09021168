import torch
import torch.nn as nn


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_channels, mid_channels, stride=1):
        super().__init__()
        # Output channels: mid_channels * self.expansion.
        # TODO: 1x1 (in -> mid) + BN + ReLU, 3x3 (mid -> mid, stride) + BN + ReLU, 1x1 (mid -> 4 * mid) + BN
        # TODO: shortcut: identity, or 1x1 conv (stride) + BN when stride != 1 or in_channels != 4 * mid

    def forward(self, x):
        # TODO: return relu(main(x) + shortcut(x))
        raise NotImplementedError


if __name__ == "__main__":
    block = Bottleneck(64, 64, stride=2)
    print(block(torch.randn(2, 64, 56, 56)).shape)  # expected: torch.Size([2, 256, 28, 28])
