import torch
import torch.nn as nn


class BasicBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        # TODO: conv3x3(stride) -> BatchNorm2d -> ReLU -> conv3x3 -> BatchNorm2d
        # TODO: shortcut: identity, or 1x1 conv (same stride) + BatchNorm2d when the shape changes

    def forward(self, x):
        # TODO: return relu(main(x) + shortcut(x))
        raise NotImplementedError


if __name__ == "__main__":
    block = BasicBlock(64, 128, stride=2)
    print(block(torch.randn(2, 64, 32, 32)).shape)  # expected: torch.Size([2, 128, 16, 16])
