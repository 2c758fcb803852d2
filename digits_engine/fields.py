"""Declarative form fields: one definition, rendered by the app as widgets and
by the CLI as options, validated in one place.

`validate(fields, raw)` turns raw input (strings from a command line or text
boxes, or already-typed values) into typed values, and collects one message
per bad field so that a form can show each next to its input.
"""
import math
from dataclasses import dataclass, field as dc_field
from typing import Any

from .errors import DigitsError

KINDS = ("text", "path", "int", "float", "choice", "bool", "secret")  # secret: typed hidden, never stored


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: str = "text"
    default: Any = None
    help: str = ""
    choices: tuple = ()
    minimum: float | None = None
    maximum: float | None = None
    required: bool = False
    advanced: bool = False  # shown only when the user opens the advanced options
    choice_labels: dict = dc_field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Field {self.name!r}: kind must be one of {', '.join(KINDS)}, got {self.kind!r}.")


class FormErrors(DigitsError, ValueError):
    """Several fields are wrong; `errors` maps each field name to its message."""

    def __init__(self, errors: dict[str, str]):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{name}: {msg}" for name, msg in self.errors.items()))


def _blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _convert(f: Field, value):
    if f.kind == "int":
        try:
            number = float(str(value).strip())
        except ValueError:
            raise ValueError(f"{f.label} must be a whole number, got {value!r}.") from None
        if not math.isfinite(number) or number != int(number):  # int(inf) would raise OverflowError
            raise ValueError(f"{f.label} must be a whole number, got {value!r}.")
        return int(number)
    if f.kind == "float":
        try:
            number = float(str(value).strip())
        except ValueError:
            raise ValueError(f"{f.label} must be a number, got {value!r}.") from None
        if not math.isfinite(number):  # nan passes every range check
            raise ValueError(f"{f.label} must be a finite number, got {value!r}.")
        return number
    if f.kind == "bool":
        if isinstance(value, bool):
            return value
        return str(value).strip().lower() in ("1", "true", "yes", "on")
    value = str(value).strip()
    if f.kind == "choice" and f.choices:
        matches = [c for c in f.choices if str(c).lower() == value.lower()]
        if not matches:
            raise ValueError(f"{f.label} must be one of {', '.join(map(str, f.choices))}; got {value!r}.")
        return matches[0]
    return value


def _check_range(f: Field, value) -> None:
    if f.minimum is not None and value < f.minimum:
        raise ValueError(f"{f.label} must be at least {f.minimum:g}, got {value:g}.")
    if f.maximum is not None and value > f.maximum:
        raise ValueError(f"{f.label} must be at most {f.maximum:g}, got {value:g}.")


def validate(fields: list[Field], raw: dict) -> dict:
    """Typed values for every field (defaults filled in), or FormErrors listing each bad field."""
    values, errors = convert(fields, raw)
    if errors:
        raise FormErrors(errors)
    return values


def convert(fields: list[Field], raw: dict) -> tuple[dict, dict]:
    """(typed values of the fields that are fine, {field: message} for the others).

    Lets a form run its own cross-field checks on what is valid and report
    every problem at once."""
    values, errors = {}, {}
    for f in fields:
        value = raw.get(f.name)
        if _blank(value):
            if f.required:
                errors[f.name] = f"{f.label} is required."
            values[f.name] = f.default
            continue
        try:
            value = _convert(f, value)
            if f.kind in ("int", "float"):
                _check_range(f, value)
        except ValueError as exc:
            errors[f.name] = str(exc)
            continue
        values[f.name] = value
    return values, errors

