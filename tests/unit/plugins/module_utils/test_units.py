# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sizes: integers are GiB, strings carry a unit and must come to whole GiB."""

from __future__ import annotations

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils.errors import InvalidParameter
from ansible_collections.blockstore.storage.plugins.module_utils.units import MAX_SIZE_GIB, parse_size

VALID = [
    (1, 1), (10, 10), (10.0, 10), (MAX_SIZE_GIB, MAX_SIZE_GIB),
    ("10", 10), ("10G", 10), ("10g", 10), ("10GiB", 10), ("10gib", 10), ("10 GiB", 10), ("  20G  ", 20),
    ("1T", 1024), ("1TiB", 1024), ("0.5T", 512), ("2.5TiB", 2560), ("1.0G", 1), ("1024T", MAX_SIZE_GIB),
    ("1024M", 1), ("2048MiB", 2), ("1536.0M", None),  # 1.5 GiB: refused below
    ("16777216MB", 15625),  # 16777216 * 10^6 bytes is exactly 15625 GiB
]


@pytest.mark.parametrize("value, gib", [v for v in VALID if v[1] is not None])
def test_valid_sizes(value, gib):
    assert parse_size(value) == gib


NOT_A_SIZE = ["", " ", "abc", "\u0661\u0660G", "G", "10X", "10 G B", "1,5G", "1e3", "-1", "+1", "0x10", ".5T",
              "1.G", "ten", None, True, False, [], {}, [10], 1.5, float("nan"), float("inf"), b"10"]


@pytest.mark.parametrize("value", NOT_A_SIZE, ids=repr)
def test_what_is_not_a_size_is_refused_naming_the_option_and_the_units(value):
    with pytest.raises(InvalidParameter) as error:
        parse_size(value)
    assert error.value.option == "size"
    assert str(error.value).startswith("size: ")
    assert "GiB" in str(error.value)


@pytest.mark.parametrize("value", ["1.5G", "1536.0M", "1GB", "1TB", "1000GB", "500M", "1.1T", "1537MiB"])
def test_sizes_that_are_not_whole_gib_are_refused(value):
    with pytest.raises(InvalidParameter, match="not a whole number of GiB"):
        parse_size(value)


@pytest.mark.parametrize("value", [0, "0", "0G", "0.0T", -1, -1024])
def test_zero_and_negative_are_below_the_smallest_size(value):
    with pytest.raises(InvalidParameter, match="below the smallest size, 1 GiB"):
        parse_size(value)


@pytest.mark.parametrize("value", [MAX_SIZE_GIB + 1, "1025T", 2 ** 80, "99999999999999999999T", 10.0 ** 30])
def test_huge_sizes_are_refused(value):
    with pytest.raises(InvalidParameter, match="above the largest size"):
        parse_size(value)


@pytest.mark.parametrize("value", ["9" * 5000 + "G", "1." + "0" * 5000 + "G"])
def test_absurdly_long_numbers_fail_clearly(value):
    # Python refuses int() on more than 4,300 digits; that must not become a traceback.
    with pytest.raises(InvalidParameter, match="not a size"):
        parse_size(value)


def test_the_option_name_is_the_callers():
    with pytest.raises(InvalidParameter) as error:
        parse_size("big", "volumes[3].size")
    assert error.value.option == "volumes[3].size"
    assert str(error.value).startswith("volumes[3].size: 'big' is not a size")


@pytest.mark.parametrize("value", ["1073.741824MB", "1.073741824GB", "0.001073741824TB"])
def test_decimal_units_are_powers_of_ten(value):
    # 1 GiB is 1,073,741,824 bytes: in MB, GB and TB (10^6, 10^9, 10^12 bytes) it is exactly one GiB.
    assert parse_size(value) == 1


@pytest.mark.parametrize("value, size_bytes", [
    ("1GB", 10 ** 9), ("1.5GB", 15 * 10 ** 8), ("1TB", 10 ** 12), ("1.5G", 3 * 2 ** 29), ("500M", 500 * 2 ** 20)])
def test_a_size_that_is_not_whole_gib_is_told_in_bytes(value, size_bytes):
    with pytest.raises(InvalidParameter, match=f"'{value}' is {size_bytes} bytes, not a whole number of GiB"):
        parse_size(value)
