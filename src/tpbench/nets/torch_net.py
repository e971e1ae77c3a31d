"""`net=torch`: any importable torch model as a tpbench net, for every feedback-alignment rule.

The model's nn.Linear / nn.Conv2d are made routed in place (`tpbench.conversion.route_modules`);
`forward(x, route)` hands the rule's route to each of them for that pass, so BP, FA, uSF, frSF,
brSF and DFA all train it through `python train.py`. The model is built from its config: a
`_partial_` class gets the data's class count as `num_classes_arg` (torchvision's convention
`num_classes`; null: built as configured). One probe pass on a 2-sample zero batch (eval mode)
materialises lazy modules and checks that the output is (N, num_classes).
The target-propagation rules need a sequence of layers with inverses and refuse it at start-up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
from torch import Tensor, nn

from tpbench.conversion import route_modules
from tpbench.errors import ConfigError


class TorchNet(nn.Module):
    """A torch model seen as a one-block Network: in_shape, out_shape, forward(x, route)."""

    def __init__(
        self,
        model: nn.Module | Callable[..., nn.Module],
        in_shape: Sequence[int],
        num_classes: int,
        num_classes_arg: str | None = "num_classes",
    ):
        super().__init__()
        if not isinstance(model, nn.Module):
            model = model(**{num_classes_arg: num_classes}) if num_classes_arg else model()
        self.model = model
        self.in_shape = tuple(in_shape)
        out = self._probe()
        if out.shape[1:] != (num_classes,):
            raise ConfigError(
                f"net.model {type(model).__name__} gives outputs of shape {tuple(out.shape[1:])} "
                f"for inputs {self.in_shape}, not ({num_classes},); set its class count "
                "(net.num_classes_arg names the keyword it is passed as)."
            )
        self.out_shape = (num_classes,)
        self.layers = route_modules(model)  # plain list: the modules stay registered in model

    def _probe(self) -> Tensor:
        training = self.model.training
        self.model.eval()
        with torch.no_grad():
            out = self.model(torch.zeros(2, *self.in_shape))
        self.model.train(training)
        return out

    def forward(self, x: Tensor, route=None) -> Tensor:
        for layer in self.layers:
            layer.route = route
        return self.model(x)

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> nn.Module:
        return [self.model][index]

    def __iter__(self) -> Iterator[nn.Module]:
        return iter([self.model])

    def compile_layers(self) -> None:
        self.model.compile()

    def forward_parameters(self) -> list[nn.Parameter]:
        return list(self.model.parameters())

    def feedback_parameters(self) -> list[nn.Parameter]:
        return []  # fixed feedback only (buffers)
