# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A qcow2 snapshot or clone stopped at each of its steps, then run again or deleted: the source
volume's guest-visible data stays byte-identical and nothing is left behind.

The real file driver and qemu-img in a temp directory; the stop is the n-th file or qemu-img
call of the driver raising: `Killed` (what kill -9 leaves: the module returns nothing, the store
keeps the record 'creating') or OSError (a failed step: the engine undoes the create).
storage_crash does the same with real kill -9s through Ansible.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils.drivers import build_driver
from ansible_collections.blockstore.storage.plugins.module_utils.drivers.file import qcow2
from ansible_collections.blockstore.storage.plugins.module_utils.errors import BlockstoreError
from ansible_collections.blockstore.storage.plugins.module_utils.persistence.memory import MemoryStore
from ansible_collections.blockstore.storage.plugins.module_utils.snapshots import SnapshotResource
from ansible_collections.blockstore.storage.plugins.module_utils.transaction import perform, run_task
from ansible_collections.blockstore.storage.plugins.module_utils.volumes import VolumeResource

pytestmark = pytest.mark.skipif(not shutil.which("qemu-io"), reason="qemu-img/qemu-io are not installed (qemu-utils)")

OPS = {
    "snapshot": (SnapshotResource, {"name": "s1", "volume": "base"}, {"name": "s1", "state": "absent"}),
    "clone": (VolumeResource, {"name": "c1", "source": {"volume": "base"}}, {"name": "c1", "state": "absent"}),
}


class Killed(BaseException):
    """Stands for SIGKILL: nothing in the collection catches it."""


class Stops:
    """Counts the driver's changing calls (os.link/replace/chmod/unlink, qemu-img runs) while
    armed, and raises `error` at the `at`-th."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.at, self.count, self.error, self.armed = 0, 0, None, False
        for name in ("link", "replace", "chmod", "unlink"):
            monkeypatch.setattr(os, name, self._wrap(getattr(os, name)))
        monkeypatch.setattr(qcow2, "run", self._wrap(qcow2.run))

    def _wrap(self, call):
        def wrapper(*args, **kwargs):
            if self.armed:
                self.count += 1
                if self.count == self.at:
                    raise self.error
            return call(*args, **kwargs)
        return wrapper

    def arm(self, at: int, error: BaseException | None) -> None:
        self.at, self.count, self.error, self.armed = at, 0, error, True


def image_tool(*args: str) -> None:
    subprocess.run(list(args), check=True, capture_output=True)


class Lab:
    def __init__(self, path: str, stops: Stops) -> None:
        self.path, self.stops, self.store = path, stops, MemoryStore()
        self.driver = build_driver({"name": "lab", "driver": "file", "path": path, "format": "qcow2"})

    def run(self, handler, **params) -> dict:
        def execute(records: list, new_ids: list):
            try:
                return perform(handler, self.driver, params, records, new_ids, False)
            except Killed:
                return {}, None  # the module died: no result, no changes
            finally:
                self.stops.armed = False
        return run_task(self.store, handler, "lab", params, False, execute)

    def base(self) -> str:
        """The base volume holding a pattern, and a copy of its guest-visible data to compare with."""
        volume = self.run(VolumeResource, name="base", size=1)["volume"]
        image = os.path.join(self.path, f"volume-{volume['id']}")
        image_tool("qemu-io", "-f", "qcow2", "-c", "write -P 0xab 0 1M", "-c", "write -P 0xcd 512M 64k", image)
        image_tool("qemu-img", "convert", "-f", "qcow2", "-O", "qcow2", image, self.path + ".reference")
        return image

    def same_data(self, image: str) -> bool:
        compared = subprocess.run(["qemu-img", "compare", "-U", "-s", "-q", "-f", "qcow2", "-F", "qcow2", image,
                                   self.path + ".reference"], check=False, capture_output=True, text=True)
        return compared.returncode == 0

    def backing(self, image: str) -> str | None:
        return qcow2.qcow2_header(image)[0]

    def problems(self, image: str, when: str) -> list[str]:
        """What is wrong once the half-made object is gone: the source's data, or something left."""
        found = [] if self.same_data(image) else [f"{when}: the source's data is not what it was"]
        left = sorted(os.listdir(self.path))
        if left != [os.path.basename(image)]:
            found.append(f"{when}: left behind {left}")
        elif self.backing(image) is not None:
            found.append(f"{when}: the source still has a backing file {self.backing(image)}")
        return found


def steps_of(tmp_path, monkeypatch, op: str) -> int:
    lab = Lab(str(tmp_path / "count"), Stops(monkeypatch))
    lab.base()
    handler, make, _delete = OPS[op]
    lab.stops.arm(0, None)
    lab.run(handler, **make)
    return lab.stops.count


def kind_of(op: str) -> str:
    """The kind of record the operation makes."""
    return "snapshot" if op == "snapshot" else "volume"


def stopped_at_each_step(tmp_path, monkeypatch, steps: int, label: str, error):
    """For each of an operation's `steps` driver calls: (its number, a fresh lab with its source image, that
    image, the stops), the stop armed at that call with a new `error()`."""
    stops = Stops(monkeypatch)
    for at in range(1, steps + 1):
        lab = Lab(str(tmp_path / f"{label}-{at}"), stops)
        image = lab.base()
        stops.arm(at, error())
        yield at, lab, image, stops


@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("then", ["delete", "rerun"])
def test_killed_at_each_step_then_deleted_or_run_again_keeps_the_source_whole(tmp_path, monkeypatch, op, then):
    steps = steps_of(tmp_path, monkeypatch, op)
    assert steps >= 5  # link, overlay (remove, create, rename), chmod at least
    handler, make, delete = OPS[op]
    problems = []
    for at, lab, image, stops in stopped_at_each_step(tmp_path, monkeypatch, steps, then, Killed):
        lab.run(handler, **make)
        assert stops.count == at, "the stop never came"
        assert lab.store.find("lab", kind_of(op), name=make["name"])[0]["status"] == "creating"
        if then == "delete":
            assert lab.run(handler, **delete)["changed"] is True
        else:
            assert lab.run(handler, **make)["changed"] is True
            assert lab.run(handler, **make)["changed"] is False
            assert lab.run(handler, **delete)["changed"] is True
        problems += lab.problems(image, f"killed at {at}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("op", list(OPS))
def test_a_failed_step_is_undone_and_keeps_the_source_whole(tmp_path, monkeypatch, op):
    handler, make, _delete = OPS[op]
    problems = []
    steps = steps_of(tmp_path, monkeypatch, op)
    for at, lab, image, _stops in stopped_at_each_step(tmp_path, monkeypatch, steps, "fail",
                                                       lambda: OSError(5, "Input/output error")):
        with pytest.raises(BlockstoreError):
            lab.run(handler, **make)
        assert not lab.store.find("lab", kind_of(op), name=make["name"])
        problems += lab.problems(image, f"failed at {at}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("op", list(OPS))
def test_a_killed_delete_of_a_half_made_one_is_finished_by_the_next(tmp_path, monkeypatch, op):
    # Killed at the 5th call (chmod of the frozen image): the volume's overlay has taken its name.
    stops = Stops(monkeypatch)
    handler, make, delete = OPS[op]
    problems, at = [], 0
    while True:
        at += 1
        lab = Lab(str(tmp_path / f"twice-{at}"), stops)
        image = lab.base()
        stops.arm(5, Killed())
        lab.run(handler, **make)
        stops.arm(at, Killed())
        lab.run(handler, **delete)
        if stops.count < at:
            break  # the delete ran through: every step has been killed at
        assert lab.store.find("lab", kind_of(op), name=make["name"])[0]["status"] == "deleting"
        assert lab.run(handler, **delete)["changed"] is True
        problems += lab.problems(image, f"delete killed at {at}")
    assert at > 3
    assert not problems, "\n".join(problems)
