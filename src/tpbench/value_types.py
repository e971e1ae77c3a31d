"""Is a command-line value of the type its key takes? The class built says, else the default.

A key under a node with a `_target_` takes what the target's parameter annotation allows
(`trainer.devices`: a list, a string or an int; `trainer.precision`: one of its literals); a key
without one (a plain option such as `test` or `data.augment.hflip`) takes the type of its default.
A word where a boolean is expected (`yes`, `off`) or a number (`abc`) is refused: OmegaConf would
keep it as a string, and a non-empty string is true, so `data.download=no` would download.
"""

from __future__ import annotations

import collections.abc
import difflib
import inspect
import types
import typing
from typing import Any

from hydra.utils import get_object
from omegaconf import DictConfig

from tpbench.errors import ConfigError

SEQUENCES = (list, tuple, collections.abc.Sequence, collections.abc.Iterable)
MAPPINGS = (dict, collections.abc.Mapping)


def check_value(key: str, value: Any, node: DictConfig | None, default: Any) -> None:
    """ConfigError naming key, value and what is valid when `value` does not fit the key (an
    interpolation, `${...}`, is resolved later and not judged here)."""
    if isinstance(value, str) and "${" in value:
        return
    annotation = _annotation(node, key.rsplit(".", 1)[-1])
    if annotation is None:
        annotation = _default_type(default)
    if annotation is None or _accepts(annotation, value):
        return
    choices = [str(c) for c in _literals(annotation)]
    close = difflib.get_close_matches(str(value), choices, n=3, cutoff=0.4)
    hint = f"; closest: {', '.join(close)}" if close else ""
    raise ConfigError(
        f"{key}={_show(value)} is not valid: {key} takes {_describe(annotation)}{hint}."
    )


def _show(value: Any) -> str:
    return "''" if value == "" else str(value)


def _annotation(node: DictConfig | None, name: str) -> Any:
    """The annotation of parameter `name` of the node's `_target_`, None when unknown."""
    target = node.get("_target_") if isinstance(node, DictConfig) else None
    if not isinstance(target, str):
        return None
    try:
        built = get_object(target)
        function = built.__init__ if inspect.isclass(built) else built
        hints = typing.get_type_hints(function)
    except Exception:  # not importable here, or annotations that do not resolve: fall back
        return None
    return hints.get(name)


def _default_type(default: Any) -> Any:
    """What a key without an annotation takes: a boolean stays a boolean, a number a number
    (a count may be a fraction: `val_size`), a list a list; anything else is not checked."""
    if isinstance(default, bool):
        return bool
    if isinstance(default, int | float):
        return int | float
    if isinstance(default, list | tuple):
        return list
    return None


def _accepts(annotation: Any, value: Any) -> bool:
    origin = typing.get_origin(annotation) or annotation
    if annotation is Any or isinstance(annotation, typing.TypeVar):
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(arg, value) for arg in _plain(typing.get_args(annotation)))
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if annotation is type(None):
        return value is None
    if origin is bool:
        return isinstance(value, bool)
    if origin is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if origin is str:
        return isinstance(value, str)
    if origin in SEQUENCES:
        return isinstance(value, list | tuple)
    if origin in MAPPINGS:
        return isinstance(value, dict)
    return True  # a class, a callable, a protocol: nothing to say about a config value


def _plain(members: tuple) -> tuple:
    """A union's members a config value can be: `float | Tensor` takes a number, not anything
    a Tensor might be built from; a union of classes only (nothing plain) is not judged."""
    plain = tuple(m for m in members if _is_plain(m))
    return plain or (Any,)


def _is_plain(annotation: Any) -> bool:
    origin = typing.get_origin(annotation) or annotation
    if origin in (typing.Union, types.UnionType):
        return any(_is_plain(arg) for arg in typing.get_args(annotation))
    return origin in (bool, int, float, str, type(None), typing.Literal, *SEQUENCES, *MAPPINGS)


def _literals(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return list(typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return [lit for arg in typing.get_args(annotation) for lit in _literals(arg)]
    return []


def _describe(annotation: Any) -> str:
    """`a number`, `true or false`, `one of 16-mixed, bf16-mixed, ...`, joined with `or`."""
    origin = typing.get_origin(annotation) or annotation
    if origin in (typing.Union, types.UnionType):
        members = _plain(typing.get_args(annotation))
        words = [_describe(m) for m in members if typing.get_origin(m) is not typing.Literal]
        words = list(dict.fromkeys(words))
        if "a number" in words and "a whole number" in words:  # int | float
            words.remove("a whole number")
        literals = list(dict.fromkeys(str(lit) for lit in _literals(annotation)))
        return " or ".join(([f"one of {', '.join(literals)}"] if literals else []) + words)
    if origin is typing.Literal:
        return "one of " + ", ".join(str(a) for a in typing.get_args(annotation))
    names = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}
    names |= {type(None): "null"} | {t: "a list" for t in SEQUENCES}
    names |= {t: "a mapping" for t in MAPPINGS}
    return names.get(origin, getattr(origin, "__name__", str(origin)))
