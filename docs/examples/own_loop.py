"""Your own training loop with tpbench: a rule around a net, its step on a batch, its diagnostics;
then any torch model converted to a feedback-alignment rule. Runs in seconds on a CPU:

    python docs/examples/own_loop.py
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

import tpbench
from tpbench.algorithms.feedback_alignment import FeedbackAlignment
from tpbench.diagnostics.geometry import angle_degrees
from tpbench.diagnostics.update_alignment import bp_gradients
from tpbench.diagnostics.weight_alignment import WeightAlignment
from tpbench.nets.architectures import fc

torch.manual_seed(0)
teacher = torch.randn(64, 4)  # a learnable toy task: labels of a random linear teacher
x_all = torch.randn(512, 1, 8, 8)
y_all = (x_all.flatten(1) @ teacher).argmax(1)
batches = [(x_all[i : i + 32], y_all[i : i + 32]) for i in range(0, 512, 32)]

# 1. A rule around a tpbench net, stepped by hand: no Trainer.
net = fc((1, 8, 8), 4, hidden=(32, 32))
rule = FeedbackAlignment(net, partial(torch.optim.Adam, lr=3e-3), feedback="frsf")
rule.standalone_optimizers()  # builds the optimizers train_step uses
for epoch in range(5):
    for x, y in batches:
        logits, loss = rule.train_step(x, y)  # one forward, one backward, one optimizer step
    x, y = batches[0]
    angles = WeightAlignment().measure(rule, x, y)  # ∠(W_l, B_l) per layer, in degrees
    bp = bp_gradients(rule, x, y)  # per layer: backprop's gradient of (W_l, b_l), flat
    rule.forward_optimizer.zero_grad()
    rule.task_loss(rule.net(x, route=rule.route), y).backward()  # the rule's own gradient
    ours = torch.cat([p.grad.flatten() for p in net[0].forward_parameters()])
    update_angle = angle_degrees(ours, bp[0])
    weight_angle = angles["diag/weight_angle/L2"]
    print(
        f"epoch {epoch}: loss {loss.item():.3f}, ∠(W_2, B_2) {weight_angle:.1f}°, "
        f"∠(rule, BP) update of layer 1 {update_angle:.1f}°"
    )


# 2. Any torch model: convert it, then train it with plain PyTorch.
class MyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(1, 8, 3, padding=1), nn.Linear(8 * 16, 4)

    def forward(self, x):
        h = F.max_pool2d(torch.relu(self.conv(x)), 2)
        return self.fc(F.dropout(h.flatten(1), 0.1, self.training))


model = tpbench.convert(MyNet(), rule="dfa", seed=0, num_outputs=4)
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
for epoch in range(5):
    for x, y in batches:
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()  # the error reaches each layer as e·D (DFA)
        optimizer.step()
    print(f"converted MyNet (DFA), epoch {epoch}: loss {loss.item():.3f}")
