# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Volume sizes (integers are GiB, strings carry a unit and must come to whole GiB) and ages ('7d', '1w2d')."""

from __future__ import annotations

import re

from .errors import InvalidParameter

GiB = 1024 ** 3
# 1 PiB: far beyond any file or pool here, small enough that arithmetic and
# qemu-img never overflow. A larger request is almost surely a unit mistake.
MAX_SIZE_GIB = 1024 * 1024

_MULTIPLIERS = {
    "": GiB, "M": 1024 ** 2, "G": GiB, "T": 1024 ** 4,
    "MIB": 1024 ** 2, "GIB": GiB, "TIB": 1024 ** 4,
    "MB": 10 ** 6, "GB": 10 ** 9, "TB": 10 ** 12,
}
# ASCII digits only, and few enough for int() (Python refuses > 4,300 digits): any
# size with more than 30 digits is far above MAX_SIZE_GIB anyway.
_SIZE_RE = re.compile(r"^\s*([0-9]{1,30}(?:\.[0-9]{1,30})?)\s*([A-Za-z]*)\s*$")
ALLOWED = "an integer number of GiB, or a string with a unit M, G, T, MiB, GiB, TiB, MB, GB or TB"


def parse_size(value: object, option: str = "size") -> int:
    """Return a size in whole GiB, or raise InvalidParameter naming the option."""
    if isinstance(value, bool) or value is None:
        raise InvalidParameter(f"{option}: {value!r} is not a size; give {ALLOWED}", option)
    if isinstance(value, int):
        gib = value
    elif isinstance(value, float) and value.is_integer():
        gib = int(value)
    elif isinstance(value, str):
        gib = _parse_text(value, option)
    else:
        raise InvalidParameter(f"{option}: {value!r} is not a size; give {ALLOWED}", option)
    if gib < 1:
        raise InvalidParameter(f"{option}: {value!r} is below the smallest size, 1 GiB", option)
    if gib > MAX_SIZE_GIB:
        raise InvalidParameter(f"{option}: {value!r} is above the largest size, {MAX_SIZE_GIB} GiB (1 PiB)", option)
    return gib


def _parse_text(text: str, option: str) -> int:
    match = _SIZE_RE.match(text)
    unit = match.group(2).upper() if match else None
    if not match or unit not in _MULTIPLIERS:
        raise InvalidParameter(f"{option}: {text!r} is not a size; give {ALLOWED}", option)
    number = match.group(1)
    # Exact arithmetic: '1.5G' must not become 1 through float rounding.
    whole, _point, frac = number.partition(".")
    scale = 10 ** len(frac)
    total_bytes_scaled = int(whole + frac) * _MULTIPLIERS[unit]
    if total_bytes_scaled % (scale * GiB):
        raise InvalidParameter(
            f"{option}: {text!r} is {total_bytes_scaled / scale:.0f} bytes, not a whole number of GiB; "
            "volumes are sized in whole GiB (for example 20, '20G' or '20GiB')", option)
    return total_bytes_scaled // (scale * GiB)


_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# One or more <number><unit> parts, largest unit first or not: '7d', '36h', '1w3d12h'. At most 9 digits
# a part: anything longer is a typo, not an age.
_AGE_RE = re.compile(r"^(?:[0-9]{1,9}[smhdw])+$")
_AGE_PART_RE = re.compile(r"([0-9]{1,9})([smhdw])")
AGE_ALLOWED = ("a number with a unit s, m, h, d or w (seconds, minutes, hours, days, weeks), "
               "or several such parts, for example '7d', '36h' or '1w3d'")


def parse_age(value: object, option: str) -> int:
    """Return an age in seconds, or raise InvalidParameter naming the option."""
    if not isinstance(value, str) or not _AGE_RE.match(value):
        raise InvalidParameter(f"{option}: {value!r} is not an age; give {AGE_ALLOWED}", option)
    seconds = sum(int(n) * _AGE_UNITS[u] for n, u in _AGE_PART_RE.findall(value))
    if seconds < 1:
        raise InvalidParameter(f"{option}: {value!r} is no age at all; give one of at least 1s", option)
    return seconds
