"""A network: an indexable sequence of layers with every activation on request."""

from __future__ import annotations

from collections.abc import Iterator

from torch import Tensor, nn

from tpbench.nets.layers import Layer


class Network(nn.Module):
    """h_0 = x, h_l = F_l(h_{l-1}); the last layer's output is the logits."""

    def __init__(self, layers: list[Layer]):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int) -> Layer:
        return self.layers[index]

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    @property
    def in_shape(self) -> tuple[int, ...]:
        return self.layers[0].in_shape

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.layers[-1].out_shape

    def forward(self, x: Tensor, route=None) -> Tensor:
        """h_L; `route` (tpbench.nets.routes), handed to every layer, sets how W·x sends errors."""
        for layer in self.layers:
            x = layer(x, route)
        return x

    def forward_all(self, x: Tensor, detach: bool = False, route=None) -> list[Tensor]:
        """[h_1, ..., h_L]; with detach=True each layer's input is cut from the graph, so a loss
        on h_l reaches only layer l's parameters (layer-local losses)."""
        activations = []
        for layer in self.layers:
            x = layer(x.detach() if detach else x, route)
            activations.append(x)
        return activations

    def pin_pool_indices(self) -> None:
        """Remember every max-un-pooling layer's switches of the latest forward pass."""
        for layer in self.layers:
            if getattr(layer, "pool", None) is not None:
                layer.pool.pin()

    def restore_pool_indices(self) -> None:
        """Back to the pinned switches (after passes on other inputs moved them)."""
        for layer in self.layers:
            if getattr(layer, "pool", None) is not None:
                layer.pool.restore()

    def compile_layers(self) -> None:
        """torch.compile every layer's forward in place; used by every rule's forward pass and by
        evaluation (rule-specific feedback computations, inverses G_l, stay eager)."""
        for layer in self.layers:
            layer.compile()

    def forward_parameters(self) -> list[nn.Parameter]:
        return [p for layer in self.layers for p in layer.forward_parameters()]

    def feedback_parameters(self) -> list[nn.Parameter]:
        return [p for layer in self.layers for p in layer.feedback_parameters()]
