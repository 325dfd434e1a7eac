# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Driver options: one declaration per option, used to validate task parameters.

Each `Opt` carries what an oslo.config Opt carries (name, type, default, help,
secret, choices) so a cinder.conf-style backends file can be parsed with the
same declarations; oslo.config itself (~90 ms to import) is only imported where
such a file is read.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

from .errors import InvalidParameter

# Option types, each with the oslo.config Opt class a backends file parses it with (`path` has no
# oslo type of its own: a StrOpt).
OSLO_TYPES = {"str": "StrOpt", "path": "StrOpt", "int": "IntOpt", "bool": "BoolOpt"}
TYPES = tuple(OSLO_TYPES)
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


@dataclasses.dataclass(frozen=True)
class Opt:
    name: str
    type: str = "str"
    default: Any = None
    help: str = ""
    choices: tuple = ()
    required: bool = False
    secret: bool = False
    min: int | None = None

    def __post_init__(self) -> None:
        if self.type not in TYPES:  # a mistake in a driver's declarations, not in a task
            raise ValueError(f"option {self.name}: type {self.type!r} is not one of {', '.join(TYPES)}")

    def convert(self, value: Any, where: str) -> Any:
        option = f"{where}.{self.name}"
        if self.type == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in _TRUE + _FALSE:
                return value.lower() in _TRUE
            raise InvalidParameter(f"{option}: {value!r} is not a boolean (true/false)", option)
        if self.type == "int":
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                raise InvalidParameter(f"{option}: {value!r} is not an integer", option)
            try:
                number = int(value)
            except ValueError:
                raise InvalidParameter(f"{option}: {value!r} is not an integer", option) from None
            if self.min is not None and number < self.min:
                raise InvalidParameter(f"{option}: {number} is below the minimum {self.min}", option)
            return number
        if not isinstance(value, str) or not value:
            raise InvalidParameter(f"{option}: {value!r} must be a non-empty string", option)
        if "\x00" in value:
            # Refused here, before anything is written: os calls would fail later with "embedded null byte".
            raise InvalidParameter(f"{option}: {value!r} contains a NUL character", option)
        if self.choices and value not in self.choices:
            raise InvalidParameter(
                f"{option}: {value!r} is not one of {', '.join(self.choices)}", option)
        return value


def validate_options(opts: Sequence[Opt], given: Mapping[str, Any], where: str, driver: str) -> dict:
    """Return every declared option, converted, with defaults filled in.

    Unknown names are errors (a typo would otherwise silently fall back to a default).
    """
    declared = {o.name: o for o in opts}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise InvalidParameter(
            f"{where}: unknown option(s) {', '.join(unknown)} for driver {driver!r}; "
            f"allowed: {', '.join(sorted(declared)) or 'none'}", where)
    result = {}
    for opt in opts:
        value = given.get(opt.name)
        if value is None:
            if opt.required:
                raise InvalidParameter(f"{where}.{opt.name}: required by driver {driver!r} ({opt.help})",
                                       f"{where}.{opt.name}")
            result[opt.name] = opt.default
        else:
            result[opt.name] = opt.convert(value, where)
    return result


def secret_names(opts: Sequence[Opt]) -> list[str]:
    return [o.name for o in opts if o.secret]


def to_oslo_opt(opt: Opt, cfg: Any) -> Any:
    """The oslo.config Opt for one of our declarations; `cfg` is oslo_config.cfg, passed in
    so that this module never imports oslo.config itself. `required` is checked by
    validate_options (its message names the section), so it is not passed on."""
    kwargs: dict[str, Any] = {"default": opt.default, "help": opt.help, "secret": opt.secret}
    if opt.choices:
        kwargs["choices"] = list(opt.choices)
    if opt.type == "int" and opt.min is not None:
        kwargs["min"] = opt.min
    return getattr(cfg, OSLO_TYPES[opt.type])(opt.name, **kwargs)


def describe_type(opt: Opt) -> str:
    """What an option takes, in words, for error messages and docs."""
    if opt.choices:
        return "one of " + ", ".join(opt.choices)
    if opt.type == "int":
        return "an integer" + (f" >= {opt.min}" if opt.min is not None else "")
    if opt.type == "bool":
        return "a boolean (true/false)"
    if opt.type == "path":
        return "an absolute path"
    return "a string"
