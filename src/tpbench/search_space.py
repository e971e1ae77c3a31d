"""Search-space expressions (`interval`, `range`, `choice`, `tag(log, ...)`) that can be drawn from.

Hydra parses `interval(3e-4, 1e-5)` or `tag(log, interval(0, 1))` without a word and the sweeper
then fails with a traceback at its first trial; here each expression, on the command line or in
`hydra.sweeper.params`, is one ConfigError naming the key, the expression and what is valid.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import (
    ChoiceSweep,
    IntervalSweep,
    Override,
    RangeSweep,
)
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from tpbench.errors import ConfigError


def sweep_values(override: Override) -> list[Any]:
    """The values a sweep override takes (an interval: its two ends), each checked."""
    sweep = override._value
    key = override.get_key_element()
    text = override.input_line.split("=", 1)[1] if override.input_line else str(sweep)
    if isinstance(sweep, ChoiceSweep):
        return list(sweep.list)
    if isinstance(sweep, RangeSweep):
        values = list(override.sweep_iterator())
        if not values:
            raise ConfigError(
                f"{key}={text} is an empty range; range(start, "
                "stop, step) needs start < stop for a positive step."
            )
        return values
    if isinstance(sweep, IntervalSweep):
        _check_interval(key, text, sweep)
        return [sweep.start, sweep.end]
    return [override.value()]


def values_of(override: Override) -> list[Any]:
    """The value of a plain override, the values of a sweep."""
    return sweep_values(override) if override.is_sweep_override() else [override.value()]


def _check_interval(key: str, text: str, sweep: IntervalSweep) -> None:
    if not sweep.start < sweep.end:
        raise ConfigError(
            f"{key}={text} is an empty interval; interval(low, high) needs low < high, e.g. "
            f"interval({min(sweep.start, sweep.end)}, {max(sweep.start, sweep.end)})."
        )
    if "log" in sweep.tags and sweep.start <= 0:
        raise ConfigError(
            f"{key}={text} cannot be searched on a log scale: both ends must be > 0 "
            f"(low is {sweep.start}); raise low or drop the log tag."
        )


def parse_param(key: str, expression: Any) -> Override:
    """One `hydra.sweeper.params` entry as the sweep override Hydra will read."""
    line = f"{key}={expression}"
    try:
        return OverridesParser.create().parse_override(line)
    except HydraException as error:
        raise ConfigError(
            f"hydra.sweeper.params.{line} is not a search-space expression ({error}); use e.g. "
            "choice(a, b), interval(low, high), range(start, stop) or tag(log, interval(...))."
        ) from None


def check_search_space(
    cfg: DictConfig, changed: dict[str, str], check_key: Callable[[str, list[Any]], None]
) -> None:
    """Every `hydra.sweeper.params` entry (those of the config, updated by `changed` from the
    command line) parses, can be drawn from, and `check_key(key, values)` accepts the key and
    its values."""
    params = OmegaConf.select(cfg, "hydra.sweeper.params")
    params = OmegaConf.to_container(params) if isinstance(params, DictConfig) else {}
    for key, expression in {**params, **changed}.items():
        check_key(str(key), values_of(parse_param(str(key), expression)))
