"""Typed settings: one dataclass per agent (and per env family), one check for every value.

A field is declared with `setting(default, help=..., low=..., high=...)`; its type comes
from the annotation. `build(Settings, values, error)` checks every value against its
field (type, finiteness, range, choices) and names the field, the allowed values and
what it got: "epsilon must be a number in [0, 1], got 'abc'". `describe(Settings)` gives
the rows `arena agents NAME` prints. This is the one range check in Arena; envs/ and
agents/ use it too (like arena/errors.py it imports nothing from the project).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any

from arena.errors import SettingsError

_META = "arena"


class Data:
    """The type of a setting that holds structured data (nested lists, arrays, mappings: a
    model's tables) which its owner checks itself; `check` only passes it on."""


def setting(
    default: Any,
    *,
    help: str,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    choices: tuple[Any, ...] | None = None,
    recorded: bool = True,
) -> Any:
    """A dataclass field with a default, an allowed range or choice list, and a one-line help.
    `recorded=False`: the value says where or how something ran, not what it is (a device),
    so `identity` leaves it out of what the leaderboard stores and compares."""
    meta = {"help": help, "low": low, "high": high, "low_open": low_open, "high_open": high_open, "choices": choices,
            "recorded": recorded}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={_META: meta})
    return dataclasses.field(default=default, metadata={_META: meta})


DEVICES = ("auto", "cpu", "cuda")


def device_setting() -> Any:
    """The `device` setting of every neural agent, declared once: where it runs, not what it is."""
    return setting("auto", help="auto (CUDA when present), cpu or cuda", choices=DEVICES, recorded=False)


@dataclasses.dataclass(frozen=True)
class Field:
    """What one setting accepts: its type, whether None is allowed, its range or choices."""

    name: str
    kind: Any  # int, float, bool, str, list, dict
    optional: bool
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[Any, ...] | None = None
    item: Any = None  # element type of a list, value type of a dict
    recorded: bool = True  # False: where it ran, not what it is (left out by `identity`)

    def allowed(self) -> str:
        """The allowed values in words: 'a number in [0, 1]', 'one of lstm, mlp', ..."""
        if self.choices is not None:
            text = f"one of {', '.join(map(str, self.choices))}"
        else:
            noun = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(self.kind)
            if self.kind is list:
                noun = f"a list of {'integers' if self.item is int else 'numbers'}"
            elif self.kind is dict:
                noun = "a mapping of names to numbers"
            elif self.kind is Data:
                noun = "data (nested lists, arrays or mappings; see its help)"
            text = noun or self.kind.__name__
            if self.low is not None and self.high is not None:
                text += " in " + self.range_text()
            elif self.low is not None or self.high is not None:
                text += " " + self.range_text()
        return text + (" or null" if self.optional else "")

    def range_text(self) -> str:
        def num(x: float) -> str:
            return str(int(x)) if self.kind is int or self.item is int else f"{x:g}"

        if self.low is not None and self.high is not None:
            return f"{'(' if self.low_open else '['}{num(self.low)}, {num(self.high)}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {num(self.low)}"
        if self.high is not None:
            return f"{'<' if self.high_open else '<='} {num(self.high)}"
        return ""


def fields(cls: type) -> list[Field]:
    """The settings of a settings dataclass, with their types resolved from the annotations."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        kind, optional, item = _unpack(hints[f.name])
        meta = f.metadata.get(_META, {"help": ""})
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc,operator]
        out.append(Field(f.name, kind, optional, default, item=item, **meta))
    return out


def _unpack(hint: Any) -> tuple[Any, bool, Any]:
    """(base type, None allowed, element type) of an annotation such as `float | None`."""
    optional = False
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        hint = args[0]
    origin = typing.get_origin(hint)
    if origin in (list, tuple):
        return list, optional, (typing.get_args(hint) or (float,))[0]
    if origin is dict:
        return dict, optional, typing.get_args(hint)[1]
    if origin is typing.Literal:
        return str, optional, None
    return hint, optional, None


def check(field: Field, value: Any, error: type[Exception] = SettingsError, where: str = "") -> Any:
    """`value` converted to the field's type, or `error` naming the field, what it allows and what it got."""
    name = f"{where}{field.name}"

    def fail() -> typing.NoReturn:
        raise error(f"{name} must be {field.allowed()}, got {_show(value)}")

    if value is None:
        if field.optional:
            return None
        fail()
    if field.choices is not None:
        if value in field.choices and type(value) is type(field.choices[0]):
            return value
        fail()
    if field.kind is Data:
        return value  # its owner checks it (e.g. envs/mdp.py a model's arrays)
    if field.kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no"):
            return value.lower() in ("true", "yes")
        fail()
    if field.kind in (int, float):
        number = _number(value, field.kind)
        if number is None or not _in_range(field, number):
            fail()
        return number
    if field.kind is str:
        if isinstance(value, str):
            return value
        fail()
    if field.kind is list:
        if not isinstance(value, (list, tuple)):
            fail()
        items = [_number(v, field.item) for v in value]
        for i, v in enumerate(items):
            if v is None or not _in_range(field, v):
                noun = "an integer" if field.item is int else "a number"
                where_ = f" in {field.range_text()}" if field.low is not None and field.high is not None else ""
                raise error(f"{name}[{i}] must be {noun}{where_}, got {_show(value[i])}")
        return items
    if field.kind is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            fail()
        numbers = {k: _number(v, field.item or float) for k, v in value.items()}
        for k, v in numbers.items():
            if v is None or not _in_range(field, v):
                where_ = f" in {field.range_text()}" if field.low is not None and field.high is not None else ""
                raise error(f"{name}[{k!r}] must be a finite number{where_}, got {_show(value[k])}")
        return numbers
    raise TypeError(f"setting {name} has an unsupported type {field.kind!r}")  # a programming error


def _number(value: Any, kind: Any) -> int | float | None:
    """An int or a finite float from `value`; None when it is not one (strings, bools, NaN, inf)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not math.isfinite(value):
        return None
    if kind is int:
        if isinstance(value, float) and not value.is_integer():
            return None
        return int(value)
    return float(value)


def _in_range(field: Field, x: float) -> bool:
    if field.low is not None and (x <= field.low if field.low_open else x < field.low):
        return False
    if field.high is not None and (x >= field.high if field.high_open else x > field.high):
        return False
    return True


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def build(cls: type, values: dict[str, Any], error: type[Exception] = SettingsError, where: str = "") -> Any:
    """An instance of the settings dataclass `cls` from `values`, every one checked.

    Unknown names are refused with the list of known ones; missing ones take their defaults.
    """
    known = {f.name: f for f in fields(cls)}
    unknown = [k for k in values if k not in known]
    if unknown:
        raise error(f"{where}{unknown[0]} is not a setting; the settings are {', '.join(known) or '(none)'}")
    return cls(**{k: check(known[k], v, error, where) for k, v in values.items()})


def describe(cls: type) -> list[tuple[str, str, str, str, str]]:
    """(name, type, default, allowed, help) for each setting: the table `arena agents NAME` prints."""
    rows = []
    for f in fields(cls):
        kind = f.kind.__name__ + (" | None" if f.optional else "")
        allowed = f.allowed().removesuffix(" or null")
        rows.append((f.name, kind, _show(f.default), allowed, f.help))
    return rows


def as_dict(settings: Any) -> dict[str, Any]:
    """The settings as a JSON-ready dict (what checkpoints store)."""
    return dataclasses.asdict(settings)


def identity(settings: Any) -> dict[str, Any]:
    """The settings that say what an agent is (what `config()` returns and the leaderboard
    compares): all of them but those declared `recorded=False` (the device it ran on)."""
    dropped = {f.name for f in fields(type(settings)) if not f.recorded}
    return {k: v for k, v in dataclasses.asdict(settings).items() if k not in dropped}


__all__ = ["Field", "as_dict", "build", "check", "describe", "device_setting", "fields", "identity", "setting"]
