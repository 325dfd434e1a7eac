# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The qcow2 header as the file driver reads it: an image's backing file and virtual size decide which
frozen images may be collected and whether an extend still has to grow the image."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import threading
import time

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


def test_an_image_already_grown_while_open_is_not_resized_again(tmp_path):
    # An attached image is open in the process that serves it (qemu-storage-daemon), which may grow it
    # itself: qemu-img cannot take the image's write lock then, so extend must leave an image of the size alone.
    from ansible_collections.blockstore.storage.plugins.module_utils.drivers import build_driver
    from ansible_collections.blockstore.storage.plugins.module_utils.drivers.file.qcow2 import Qcow2Format
    from ansible_collections.blockstore.storage.plugins.module_utils.errors import DriverError
    from ansible_collections.blockstore.storage.plugins.module_utils.objects import Volume
    if not shutil.which("qemu-io"):
        pytest.skip("qemu-io is not installed (qemu-utils)")
    driver = build_driver({"name": "lab", "driver": "file", "path": str(tmp_path), "format": "qcow2"})
    image = tmp_path / "volume-1"
    qemu_img("create", "-q", "-f", "qcow2", str(image), "2G")
    volume = Volume(id="1", name="v", backend="lab", size=2, status="in-use")
    with subprocess.Popen(["qemu-io", "-f", "qcow2", str(image)], stdin=subprocess.PIPE,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as holder:
        try:
            # Until the holder has the image open and locked (30 s, for a loaded machine), seen in /proc/locks:
            # asking qemu-img instead could take the lock at the moment qemu-io opens it, which then gives up.
            for _attempt in range(600):
                if _locked(image):
                    break
                time.sleep(0.05)
            else:
                pytest.fail("qemu-io did not open the image")
            Qcow2Format(driver).extend(volume, str(image), 2)
            # Positive control: growing it is qemu-img's work, which the open image refuses.
            with pytest.raises(DriverError, match="lock"):
                Qcow2Format(driver).extend(volume, str(image), 3)
        finally:
            holder.communicate(b"quit\n", timeout=30)
    assert qcow2_header(str(image)) == (None, 2 * GiB)
    Qcow2Format(driver).extend(volume, str(image), 3)
    assert qcow2_header(str(image)) == (None, 3 * GiB)


def _locked(path) -> bool:
    """Whether a process holds a lock on `path` (its inode in /proc/locks, as MAJ:MIN:INODE)."""
    inode = f":{os.stat(path).st_ino} "
    with open("/proc/locks", encoding="utf-8") as locks:
        return any(inode in line for line in locks)


@pytest.mark.parametrize("task", ["delete the snapshot", "revert to it"])
def test_a_snapshot_delete_or_revert_waits_for_a_task_reading_the_chains(tmp_path, task):
    # Merging or removing frozen images while another task opens a chain through them breaks that task:
    # such tasks hold the chain lock shared (an flock on the backend directory), these two exclusive.
    from ansible_collections.blockstore.storage.plugins.module_utils.persistence.memory import MemoryStore
    from ansible_collections.blockstore.storage.tests.unit.plugins.module_utils.test_resources import Lab
    lab = Lab(str(tmp_path / "lab"), "qcow2", MemoryStore())
    lab.volume(name="v", size=1)
    lab.snapshot(volume="v", name="s")
    results = []

    def work():
        if task == "revert to it":
            results.append(lab.volume(name="v", revert_to="s"))
        else:
            results.append(lab.snapshot(volume="v", name="s", state="absent"))

    reader = os.open(lab.path, os.O_RDONLY | os.O_DIRECTORY)  # as a clone or a new snapshot holds it
    try:
        fcntl.flock(reader, fcntl.LOCK_SH)
        worker = threading.Thread(target=work)
        worker.start()
        worker.join(1.0)
        assert worker.is_alive() and results == []
    finally:
        os.close(reader)
    # Positive control: once the reader is done, the task runs.
    worker.join(60)
    assert not worker.is_alive() and results[0]["changed"]
