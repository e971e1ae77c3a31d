"""Every override of `python train.py ...` checked before Hydra builds or writes anything.

`check_command_line(argv)` composes the config the way Hydra will (config groups only) and then
checks each override against it, so a mistake ends in one sentence naming the key, the value and
the closest valid choices instead of a silent default or a message about something else:

- a config-group option that does not exist (`experiment=bartunov_mnist_fc_dpt`, `algo=fwtdp`),
  also inside a sweep (`algo=bp,fwtdp`); a search space (`hparams_search=...`) without `-m`; a
  group of train.yaml's defaults given with `+` or as `null`;
- a key that does not exist (`nett=fc`, `data.batchsize=32`, `net.hidden` under `net=torch`),
  with the closest existing keys;
- a value of the wrong type (`algo.optimizer.lr=abc`, `data.download=no`,
  `trainer.precision=16mixed`), see tpbench.value_types;
- a search-space expression that is impossible, on the command line or in
  `hydra.sweeper.params` (see tpbench.search_space).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra._internal.utils import get_args_parser
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType
from hydra.errors import HydraException
from omegaconf import DictConfig, ListConfig, OmegaConf

from tpbench.console import condense
from tpbench.errors import ConfigError
from tpbench.search_space import check_search_space, sweep_values, values_of
from tpbench.value_types import check_value

PARAMS = "hydra.sweeper.params."


def check_command_line(argv: list[str], config_dir: str, config_name: str = "train") -> None:
    """ConfigError for the first mistake among `python train.py <argv>`'s overrides."""
    args = get_args_parser().parse_args(argv)
    if args.help or args.hydra_help or args.cfg or args.info or args.shell_completion:
        return
    if args.config_path or args.config_dir or args.config_name:
        return  # another config than tpbench's: Hydra checks it
    overrides = _parse(args.overrides)
    conf = Path(config_dir)
    groups = [o for o in overrides if _group_dir(conf, o) is not None]
    for override in groups:
        _check_group(conf, override)
    _check_mode(groups, args.multirun)
    cfg = _compose(config_dir, config_name, [o for o in overrides if _shapes_config(o, groups)])
    params = _check_values(cfg, [o for o in overrides if o not in groups])
    if args.multirun:
        check_search_space(cfg, params, lambda key, values: _check_param(cfg, key, values))


def _check_values(cfg: DictConfig, overrides: list[Override]) -> dict[str, str]:
    """Check each `key=value` override (each value of a sweep) against the key in `cfg`;
    returns the `hydra.sweeper.params.<key>=<expression>` ones, for the search-space check."""
    params = {}
    for override in overrides:
        key = override.key_or_group
        if override.type != OverrideType.CHANGE or "/" in key:  # (hydra/launcher=...: Hydra's)
            continue
        if key.startswith(PARAMS):
            params[key.removeprefix(PARAMS)] = override.input_line.split("=", 1)[1]
            continue
        node, default = _locate(cfg, key, override.input_line)
        for value in values_of(override):
            check_value(key, value, node, default)
    return params


def _parse(lines: list[str]) -> list[Override]:
    try:
        return OverridesParser.create().parse_overrides(lines)
    except HydraException as error:
        raise ConfigError(condense(str(error))) from None


def _group_dir(conf: Path, override: Override) -> Path | None:
    """conf/<group>/ for a config-group override (`algo=...`, `algo/top_target=...`)."""
    key = override.key_or_group.split("@")[0]
    if "." in key or override.type == OverrideType.DEL or key.startswith("hydra"):
        return None
    folder = conf / key
    return folder if folder.is_dir() else None


def options(folder: Path) -> list[str]:
    """The selectable options of a config group (files starting with `_` are shared parts)."""
    return sorted(p.stem for p in folder.glob("*.yaml") if not p.name.startswith("_"))


def _check_group(conf: Path, override: Override) -> None:
    folder = _group_dir(conf, override)
    assert folder is not None
    valid, key = options(folder), override.key_or_group
    if override.type == OverrideType.ADD and "/" not in key:  # +experiment=... (other templates)
        raise ConfigError(
            f"{override.input_line}: {key} is already in train.yaml's defaults; select an option "
            f"with {key}=<option> (no +)."
        )
    for value in values_of(override):
        if value is None:
            raise ConfigError(f"{key}=null: to go without one, write ~{key}.")
        if str(value) in valid:
            continue
        close = difflib.get_close_matches(str(value), valid, n=3, cutoff=0.5)
        hint = f"closest: {', '.join(close)}" if close else f"valid: {', '.join(valid)}"
        raise ConfigError(
            f"{key}={value} is not an option of {key} (no conf/{key}/{value}.yaml); {hint}."
        )


def _check_mode(groups: list[Override], multirun: bool) -> None:
    for override in groups:
        if override.key_or_group == "hparams_search" and override.value() and not multirun:
            raise ConfigError(
                f"hparams_search={override.value()} is a search space and runs only as a sweep: "
                f"add -m (python train.py -m hparams_search={override.value()} ...), or drop it "
                "for a single run."
            )


def _shapes_config(override: Override, groups: list[Override]) -> bool:
    """Overrides that decide which keys exist: groups (Hydra's own too, `hydra/sweeper/pruner=`),
    additions and deletions."""
    return (
        override in groups or override.type != OverrideType.CHANGE or "/" in override.key_or_group
    )


def _compose(config_dir: str, config_name: str, overrides: list[Override]) -> DictConfig:
    lines = []
    for override in overrides:  # a sweep over a group: its first option has the same keys
        if override.is_sweep_override():
            lines.append(f"{override.get_key_element()}={sweep_values(override)[0]}")
        else:
            lines.append(override.input_line)
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir, version_base="1.3"):
            return compose(config_name, overrides=lines, return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()


def _locate(cfg: DictConfig, key: str, line: str) -> tuple[DictConfig | None, Any]:
    """(parent node, default value) of a dotted key; ConfigError with the closest keys when a
    part of it does not exist."""
    node: Any = cfg
    parts = key.split(".")
    for depth, part in enumerate(parts):
        if isinstance(node, ListConfig) and part.isdigit() and int(part) < len(node):
            parent, node = node, node._get_node(int(part))
            continue
        if not isinstance(node, DictConfig) or part not in node:
            raise ConfigError(_unknown_key(cfg, parts, depth, node, line))
        parent, node = node, node._get_node(part)
    default = OmegaConf.select(cfg, key, throw_on_resolution_failure=False, default=None)
    return (parent if isinstance(parent, DictConfig) else None), default


def _unknown_key(cfg: DictConfig, parts: list[str], depth: int, node: Any, line: str) -> str:
    where = ".".join(parts[:depth])
    keys = [str(k) for k in node.keys()] if isinstance(node, DictConfig) else []
    keys = [k for k in keys if k != "hydra" and not k.startswith("_")]
    close = difflib.get_close_matches(parts[depth], keys, n=3, cutoff=0.6)
    prefix = f"{where}." if where else ""
    owner = f"{where} ({where}={_choice(cfg, where)})" if _choice(cfg, where) else where
    if close:
        hint = f"did you mean {' or '.join(prefix + c for c in close)}?"
    else:
        hint = f"its keys: {', '.join(keys)} (a new key is added with +{'.'.join(parts)}=...)."
    if where and not isinstance(node, DictConfig):  # e.g. algo.feedback_optimizer: null
        value = "null" if str(node) == "None" else node
        return f"{line}: {owner} is {value} here, so it has no key {parts[depth]}."
    place = f"{owner} has no key {parts[depth]}" if where else f"there is no key {parts[0]}"
    return f"{line}: {place}; {hint}"


def _choice(cfg: DictConfig, group: str) -> str | None:
    choice = OmegaConf.select(cfg, f"hydra.runtime.choices.{group.replace('.', '/')}")
    return str(choice) if choice is not None else None


def _check_param(cfg: DictConfig, key: str, values: list[Any]) -> None:
    """A searched key exists (unless added with + or ++) and each value it takes fits it."""
    if key.startswith("+"):
        return
    node, default = _locate(cfg, key, f"hydra.sweeper.params.{key}")
    for value in values:
        check_value(key, value, node, default)
