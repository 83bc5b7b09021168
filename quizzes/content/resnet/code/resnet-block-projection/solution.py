import torch
import torch.nn as nn


class ResNetBlock(nn.Module):
    """The Debug question's block, repaired: a 1x1 projection on the skip path when the channel counts differ."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        self.relu = nn.ReLU()
        if in_channels != out_channels:
            self.skip = nn.Conv2d(in_channels, out_channels, kernel_size=1)
        else:
            self.skip = nn.Identity()

    def forward(self, x):
        out = self.relu(self.conv1(x))
        out = self.conv2(out)
        return self.relu(out + self.skip(x))


if __name__ == "__main__":
    print(ResNetBlock(64, 128)(torch.randn(1, 64, 32, 32)).shape)
