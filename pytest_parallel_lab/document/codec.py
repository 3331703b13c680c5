"""JSON for the document's frozen dataclasses, driven by their resolved type hints.

One encoder and one decoder for every record type: a field's annotation (``int``,
``float | None``, ``tuple[str, ...]``, an enum, a nested dataclass, a mapping) says
what JSON it takes, so a new field needs no code here. A field may carry another
JSON name in its metadata (``field(metadata={"json": "ci_low"})``).

Decoding is tolerant of other versions (unknown keys are ignored, a missing key with
a default takes it) and strict with garbage: a wrong type raises
:class:`DocumentError` naming the place (``run.json: results[3].speedup.ci_low``).
Nothing is ever unpickled or evaluated.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import operator
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")

_PLAIN = frozenset({str, int, float, bool, type(None)})
#: The largest integer a document holds: every JSON reader (JavaScript's too) keeps it exact.
MAX_SAFE_INTEGER = 2**53 - 1


class DocumentError(ValueError):
    """A saved run cannot be read; the message names the file and the problem."""


@dataclasses.dataclass(frozen=True)
class _Field:
    name: str
    key: str
    type: Any
    required: bool


_FIELDS: dict[type[Any], tuple[_Field, ...]] = {}


def _fields(cls: type[Any]) -> tuple[_Field, ...]:
    """The fields of a dataclass with their JSON keys and resolved types (once per class)."""
    known = _FIELDS.get(cls)
    if known is not None:
        return known
    hints = typing.get_type_hints(cls)
    known = _FIELDS[cls] = tuple(
        _Field(
            f.name,
            str(f.metadata.get("json", f.name)),
            hints[f.name],
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
        )
        for f in dataclasses.fields(cls)
    )
    return known


def to_json(value: Any) -> Any:
    """*value* as plain JSON types (what :mod:`json` and xdist's execnet can carry)."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    encode = _ENCODERS.get(kind)
    if encode is None:
        encode = _ENCODERS[kind] = _encoder_of(kind)
    return encode(value)


#: How each non-plain type met so far is encoded: a suite section holds thousands of
#: records, and one lookup a value beats asking each kind in turn.
_ENCODERS: dict[type[Any], typing.Callable[[Any], Any]] = {}


def _encoder_of(kind: type[Any]) -> typing.Callable[[Any], Any]:
    if issubclass(kind, enum.Enum):
        return lambda value: value.value
    if issubclass(kind, (list, tuple)):
        return lambda value: [to_json(item) for item in value]
    if issubclass(kind, Mapping):
        return lambda value: {str(key): to_json(item) for key, item in value.items()}
    if dataclasses.is_dataclass(kind):
        return _record_encoder(_fields(kind))
    raise TypeError(f"{kind.__name__} is not a document type")


def _record_encoder(fields: tuple[_Field, ...]) -> typing.Callable[[Any], Any]:
    """A dataclass's encoder: every field read in one call, and only the fields whose
    annotation can hold something other than plain JSON passed through :func:`to_json`
    (a suite section's test records are most of a document: 13 fields each)."""
    if not fields:
        return lambda value: {}
    keys = tuple(f.key for f in fields)
    read = operator.attrgetter(*(f.name for f in fields))
    if len(fields) == 1:
        key, name = fields[0].key, fields[0].name
        return lambda value: {key: to_json(getattr(value, name))}
    converters = [(position, f.key, _converter(f.type)) for position, f in enumerate(fields)]
    converted = tuple(
        (position, key, convert) for position, key, convert in converters if convert is not None
    )

    def encode(value: Any) -> dict[str, Any]:
        values = read(value)
        data = dict(zip(keys, values, strict=True))
        for position, key, convert in converted:
            data[key] = convert(values[position])
        return data

    return encode


def _converter(annotation: Any) -> typing.Callable[[Any], Any] | None:
    """How a field of type *annotation* becomes JSON: None when its value already is
    (a plain type, or a union of them), ``list`` for a tuple of plain items,
    else :func:`to_json`."""
    if annotation in _PLAIN or annotation is None:
        return None
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if (origin is typing.Union or origin is types.UnionType) and all(
        a in _PLAIN for a in arguments
    ):
        return None
    if (
        origin is tuple
        and len(arguments) == 2
        and arguments[1] is Ellipsis
        and arguments[0] in _PLAIN
    ):
        return list
    return to_json


def from_json(cls: type[T], data: Any, where: str) -> T:
    """Rebuild the dataclass *cls* from plain JSON types; *where* names the place."""
    if not isinstance(data, dict):
        raise DocumentError(f"{where}: expected an object, got {_json_name(data)}")
    values: dict[str, Any] = {}
    for f in _fields(cls):
        if f.key not in data:
            if f.required:
                raise DocumentError(f"{where}: missing key '{f.key}'")
            continue
        values[f.name] = _decode(f.type, data[f.key], _child(where, f.key))
    return cls(**values)


def _decode(annotation: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if value is None and len(members) < len(typing.get_args(annotation)):
            return None
        if len(members) != 1:  # pragma: no cover - no record type has such a field
            raise TypeError(f"unsupported union {annotation!r}")
        return _decode(members[0], value, where)
    if annotation is Any:
        return value
    if value is None:
        raise DocumentError(f"{where}: must not be null")
    if origin is tuple:
        item_type = typing.get_args(annotation)[0]
        if not isinstance(value, list):
            raise DocumentError(f"{where}: expected a list, got {_json_name(value)}")
        return tuple(_decode(item_type, item, f"{where}[{i}]") for i, item in enumerate(value))
    if origin in (dict, Mapping) or annotation in (dict, Mapping):
        if not isinstance(value, dict):
            raise DocumentError(f"{where}: expected an object, got {_json_name(value)}")
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is not Any:
            return {k: _decode(args[1], v, _child(where, k)) for k, v in value.items()}
        return value
    if isinstance(annotation, type):
        return _decode_type(annotation, value, where)
    raise TypeError(f"unsupported field type {annotation!r}")  # pragma: no cover


def _decode_type(cls: type[Any], value: Any, where: str) -> Any:
    if issubclass(cls, enum.Enum):
        try:
            return cls(value)
        except ValueError:
            words = ", ".join(repr(m.value) for m in cls)
            raise DocumentError(f"{where}: expected one of {words}, got {value!r}") from None
    if cls is bool:
        if not isinstance(value, bool):
            raise DocumentError(f"{where}: expected true or false, got {_json_name(value)}")
        return value
    if cls is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise DocumentError(f"{where}: expected an integer, got {_json_name(value)}")
        if abs(value) > MAX_SAFE_INTEGER:
            # No count is that large; beyond it a count turned float (the HTML page's
            # charts, any sum with a time) is no longer exact, and past 1e308 overflows.
            raise DocumentError(
                f"{where}: expected an integer within ±{MAX_SAFE_INTEGER}, got {_brief(value)}"
            )
        return value
    if cls is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise DocumentError(f"{where}: expected a number, got {_json_name(value)}")
        try:
            number = float(value)
        except OverflowError:  # an integer beyond the range of a float
            number = math.inf
        if not math.isfinite(number):
            # json reads NaN and Infinity; a saved run never holds them (saving refuses).
            raise DocumentError(f"{where}: expected a finite number, got {_brief(value)}")
        return number
    if cls is str:
        if not isinstance(value, str):
            raise DocumentError(f"{where}: expected a string, got {_json_name(value)}")
        return value
    if dataclasses.is_dataclass(cls):
        return from_json(cls, value, where)
    raise TypeError(f"unsupported field type {cls!r}")  # pragma: no cover


def _brief(value: int | float) -> str:
    """*value* for a message: an integer of a thousand digits is not written out."""
    text = str(value)
    return text if len(text) <= 24 else f"an integer of {len(text.lstrip('-'))} digits"


def _child(where: str, key: str) -> str:
    """``run.json: results`` at the top of a file, ``...speedup.ci_low`` below it."""
    return f"{where} {key}" if where.endswith(":") else f"{where}.{key}"


def _json_name(value: Any) -> str:
    """The JSON word for *value*'s type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__  # pragma: no cover - json makes nothing else
