"""The Hydra plugin entry of tpbench's resumable Optuna sweeper (logic in tpbench.runs.sweeper).

Hydra instantiates sweepers only from modules under `hydra_plugins`; this thin class accepts
hydra-optuna-sweeper's config (`hydra/sweeper=optuna` with `_target_` pointing here) and imports
optuna lazily, because Hydra imports every plugin module at each start-up.
"""

from __future__ import annotations

from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class ResumableOptunaSweeper(Sweeper):
    def __init__(self, **params: Any) -> None:
        from tpbench.runs.sweeper import ResumableOptunaSweeperImpl

        self.sweeper = ResumableOptunaSweeperImpl(**params)

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> None:
        return self.sweeper.sweep(arguments)
