# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The qcow2 header as the file driver reads it: an image's backing file and virtual size decide which
frozen images may be collected and whether an extend still has to grow the image."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils.drivers.file.qcow2 import qcow2_header
from ansible_collections.blockstore.storage.plugins.module_utils.units import GiB

pytestmark = pytest.mark.skipif(not shutil.which("qemu-img"), reason="qemu-img is not installed (qemu-utils)")


def qemu_img(*args: str) -> str:
    return subprocess.run(["qemu-img", *args], capture_output=True, text=True, check=True).stdout


def test_header_gives_the_virtual_size_and_the_backing_file_qemu_img_reports(tmp_path):
    base, overlay = tmp_path / "base", tmp_path / "overlay"
    qemu_img("create", "-q", "-f", "qcow2", str(base), "3G")
    qemu_img("create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", "base", str(overlay), "5G")
    info = json.loads(qemu_img("info", "--output=json", "-U", str(overlay)))
    assert qcow2_header(str(overlay)) == (info["backing-filename"], info["virtual-size"]) == ("base", 5 * GiB)
    assert qcow2_header(str(base)) == (None, 3 * GiB)


def test_header_of_a_file_that_is_not_qcow2_is_empty(tmp_path):
    raw, short = tmp_path / "raw", tmp_path / "short"
    raw.write_bytes(b"\0" * 4096)
    short.write_bytes(b"QFI\xfb" + b"\0" * 20)  # the magic, but less than a header
    assert qcow2_header(str(raw)) == (None, 0)
    assert qcow2_header(str(short)) == (None, 0)


def test_a_failed_qemu_img_run_is_named_by_its_subcommand(tmp_path):
    from ansible_collections.blockstore.storage.plugins.module_utils.drivers import build_driver
    from ansible_collections.blockstore.storage.plugins.module_utils.drivers.file.qcow2 import Qcow2Format
    from ansible_collections.blockstore.storage.plugins.module_utils.errors import DriverError
    driver = build_driver({"name": "lab", "driver": "file", "path": str(tmp_path), "format": "qcow2"})
    with pytest.raises(DriverError, match=r"^file driver: \S*qemu-img resize failed: .*missing") as error:
        Qcow2Format(driver)._run("resize", "-q", str(tmp_path / "missing"), "2G")
    assert "-q" not in str(error.value).split("failed", maxsplit=1)[0]
