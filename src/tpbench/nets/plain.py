"""A model written in plain PyTorch, with nothing of tpbench in it: the default of `net=torch`.

Any class like this one trains under every feedback-alignment rule once tpbench converts it
(`tpbench.convert`, or `net=torch net.model._target_=<your class>`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class SmallConvNet(nn.Module):
    """conv-BN-ReLU, a residual conv pair, 2x2 max-pooling, dropout, global average pooling and a
    linear head; any (C, H, W) input (the first conv is lazy: C is read at the first pass)."""

    def __init__(self, num_classes: int = 10, width: int = 32):
        super().__init__()
        self.stem = nn.Sequential(
            nn.LazyConv2d(width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()
        )
        self.branch = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1)
        )
        self.pool, self.dropout = nn.MaxPool2d(2), nn.Dropout(0.1)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        h = self.stem(x)
        h = self.pool(torch.relu(h + self.branch(h)))  # skip connection, then pooling
        return self.head(self.dropout(h.mean((2, 3))))
