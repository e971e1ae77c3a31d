"""Any torch model under the feedback-alignment family: `tpbench.convert(model, rule="frsf")`.

Every nn.Linear and nn.Conv2d of the model becomes a `RoutedLinear` / `RoutedConv2d` in place (its
class is swapped: parameters, device, hooks and state-dict keys stay as they are) that computes
W·x with its own op and sends the error back along a route (tpbench.nets.routes): Bᵀ·δ for
`fa`, `usf`, `frsf`, `brsf`, e·D for `dfa`, Wᵀ·δ (backprop) for `bp`. Everything else in the
model (pooling, dropout, normalisation, skip connections, its own forward code) is untouched, so
the converted model trains in any ordinary PyTorch loop or LightningModule with
`loss.backward(); optimizer.step()`:

    model = tpbench.convert(MyNet(), rule="frsf", seed=0)
    loss = F.cross_entropy(model(x), y); loss.backward(); optimizer.step()

- brSF draws new magnitudes |R| at every forward pass in training mode (a forward pre-hook).
- DFA needs the number of outputs (`num_outputs`) and catches e = ∂ℓ/∂output with a hook on the
  model's output, so a plain `loss.backward()` works; each D is drawn on the layer's first
  forward pass (its input shape is known only then): run one forward pass before loading a
  checkpoint or building an optimizer over buffers.
Lazy modules (nn.LazyLinear, ...) must have run one forward pass before conversion.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tpbench.errors import ConfigError
from tpbench.nets.alignment import build_aligned_feedback, redraw
from tpbench.nets.routes import ROUTE_KINDS, AlignedFeedback, DirectFeedback

RULES = ("bp", *ROUTE_KINDS, "dfa")


class RoutedLinear(nn.Linear):
    """nn.Linear whose W·x runs `self.route` (None: backprop); W: (out, in)."""

    route = None

    def linear(self, x: Tensor, weight: Tensor | None = None) -> Tensor:
        return F.linear(x, self.weight if weight is None else weight)  # (..., in) -> (..., out)

    def linear_transpose(self, y: Tensor, weight: Tensor | None = None, input_shape=None) -> Tensor:
        return y @ (self.weight if weight is None else weight)  # Wᵀ·y: (..., out) -> (..., in)

    def forward(self, x: Tensor) -> Tensor:
        a = self.linear(x) if self.route is None else self.route(self, x)
        return a if self.bias is None else a + self.bias


class RoutedConv2d(nn.Conv2d):
    """nn.Conv2d (zero padding) whose W ⊛ x runs `self.route`; the transpose is the exact
    vector-Jacobian product w.r.t. an input of the size the route saw at that call (one conv
    may run at several resolutions per forward pass)."""

    route = None

    def linear(self, x: Tensor, weight: Tensor | None = None) -> Tensor:
        w = self.weight if weight is None else weight
        return F.conv2d(x, w, None, self.stride, self.padding, self.dilation, self.groups)

    def linear_transpose(
        self, y: Tensor, weight: Tensor | None = None, input_shape: torch.Size | None = None
    ) -> Tensor:
        w = self.weight if weight is None else weight  # (N, O, H', W') -> (N, C, H, W)
        return torch.nn.grad.conv2d_input(
            input_shape, w, y, self.stride, self.padding, self.dilation, self.groups
        )

    def forward(self, x: Tensor) -> Tensor:
        a = self.linear(x) if self.route is None else self.route(self, x)
        return a if self.bias is None else a + self.bias.view(-1, 1, 1)


def _explicit_padding(conv: nn.Conv2d) -> tuple[int, int]:
    """'valid' / 'same' as numbers (symmetric zero padding only)."""
    if conv.padding_mode != "zeros":
        raise ConfigError(
            f"tpbench.convert supports zero-padded convolutions only, not padding_mode="
            f"'{conv.padding_mode}' ({conv})."
        )
    if conv.padding == "valid":
        return (0, 0)
    if conv.padding == "same":
        total = [d * (k - 1) for d, k in zip(conv.dilation, conv.kernel_size)]
        if any(t % 2 for t in total):
            raise ConfigError(f"padding='same' of {conv} is asymmetric; give explicit padding.")
        return tuple(t // 2 for t in total)
    return tuple(conv.padding)


def route_modules(model: nn.Module) -> list[nn.Module]:
    """Swap every nn.Linear / nn.Conv2d of `model` (itself included) for its routed class, in
    place; returns them in registration order, route None (backprop)."""
    swapped = []
    for module in model.modules():
        lazy = isinstance(module, nn.modules.lazy.LazyModuleMixin)
        if lazy and module.has_uninitialized_params():
            raise ConfigError(
                f"{type(module).__name__} has not run yet; run one forward pass before "
                "tpbench.convert."
            )
        if isinstance(module, (RoutedLinear, RoutedConv2d)):
            swapped.append(module)
        elif isinstance(module, nn.Linear):
            module.__class__ = RoutedLinear
            swapped.append(module)
        elif isinstance(module, nn.Conv2d):
            module.padding = _explicit_padding(module)
            module.__class__ = RoutedConv2d
            swapped.append(module)
        else:
            continue
        if not hasattr(module, "feedback"):
            module.feedback = nn.ModuleDict()
    return swapped


def convert(
    model: nn.Module,
    rule: str = "fa",
    seed: int = 0,
    distribution: str = "uniform",
    scale: float | None = None,
    num_outputs: int | None = None,
) -> nn.Module:
    """`model` with every nn.Linear / nn.Conv2d trained by `rule` (module docstring); returns the
    same model object. B (or |R|, s) default like each W's init statistics, D like Glorot's
    bound; all drawn from `seed`."""
    if rule not in RULES:
        raise ConfigError(f"Unknown rule '{rule}' for tpbench.convert; valid: {', '.join(RULES)}.")
    layers = route_modules(model)
    if not layers:
        raise ConfigError(f"{type(model).__name__} has no nn.Linear or nn.Conv2d to convert.")
    if rule == "bp":
        return model
    if rule == "dfa":
        if num_outputs is None:
            raise ConfigError("tpbench.convert(rule='dfa') needs num_outputs (e.g. the classes).")
        generator = torch.Generator().manual_seed(seed)
        route = DirectFeedback(num_outputs, distribution, scale, generator)
        model.register_forward_hook(lambda module, args, output: route.watch(output))
    else:
        route = AlignedFeedback(rule)
        scales = build_aligned_feedback(layers, rule, distribution, scale, seed)
        if rule == "brsf":
            generator = torch.Generator(device=layers[0].weight.device).manual_seed(seed)
            model.register_forward_pre_hook(
                lambda module, args: (
                    redraw(layers, scales, distribution, generator) if module.training else None
                )
            )
    for layer in layers:
        layer.route = route
    return model
