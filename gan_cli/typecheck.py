"""Config values checked against the types their component declares, before it is built.

A component's signature is its schema: `Generator(z_dim: int, width: int = 32, ...)` already says what
`model.g.z_dim` must be, so `model.z_dim=abc` is refused in one line that names the key, instead of a
traceback from deep inside torch. Ranges (a width of 0) are the component's own check.
"""

from __future__ import annotations

import collections.abc
import inspect
import types
import typing
from typing import Any

from gan_cli.errors import UserError


def check_arguments(fn: Any, arguments: dict[str, Any], where: str) -> None:
    """Refuse the first argument whose value does not fit the annotation of fn's parameter of that name."""
    hints = _hints(fn)
    for key, value in arguments.items():
        if key in hints and not fits(value, hints[key]):
            raise UserError(f"{where}.{key}={show(value)} must be {describe(hints[key])}")


def fits(value: Any, hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or hint is inspect.Parameter.empty:
        return True
    if hint is None or hint is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(fits(value, a) for a in args)
    if origin is typing.Literal:
        return value in args
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is tuple or origin is list or origin in (collections.abc.Sequence, typing.Sequence):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(fits(v, a) for v, a in zip(value, args))
        return all(fits(v, args[0]) for v in value) if args else True
    if hint in (tuple, list):
        return isinstance(value, (list, tuple))
    return True  # a type a config cannot express (a module, a tensor, a callable): the component judges


def describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        named = [describe(a) for a in args if a is not type(None) and describe(a) != "a value"]
        text = " or ".join(dict.fromkeys(named)) or "a value"
        return f"{text} or null" if type(None) in args else text
    if origin is typing.Literal:
        return "one of " + ", ".join(map(str, args))
    if origin in (tuple, list, collections.abc.Sequence):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"a list of {len(args)} ({', '.join(describe(a) for a in args)})"
        return f"a list of {describe(args[0])}" if args else "a list"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string",
            type(None): "null"}.get(hint, "a value")


def show(value: Any) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _hints(fn: Any) -> dict[str, Any]:
    # a class passes its base classes' arguments on through **kwargs (a loss's stabilisers): the
    # schema is every __init__ along the method resolution order, the most derived one winning
    targets = [k.__init__ for k in reversed(fn.__mro__) if "__init__" in vars(k)] if inspect.isclass(fn) else [fn]
    hints: dict[str, Any] = {}
    for target in targets:
        try:
            hints.update(typing.get_type_hints(target))
        except Exception:  # noqa: BLE001 - annotations that do not evaluate give no schema, not an error
            pass
    return hints
