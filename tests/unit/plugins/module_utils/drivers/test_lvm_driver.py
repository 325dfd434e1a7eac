# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lvm driver's pure logic against a scripted LVM: the commands it builds, the JSON reports it reads,
sizes rounded to extents, and the refusals that come before any change.

This machine's kernel has no device-mapper: LVM itself runs only in the guest lab (storage_guest's lvm
phase). Here `run` answers vgs/lvs from a small model of one volume group and records every command.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils.drivers import build_driver
from ansible_collections.blockstore.storage.plugins.module_utils.drivers.lvm import lvm as lvm_module
from ansible_collections.blockstore.storage.plugins.module_utils.errors import (
    Conflict,
    DriverError,
    InvalidParameter,
    MissingDependency,
)
from ansible_collections.blockstore.storage.plugins.module_utils.objects import Snapshot, Volume
from ansible_collections.blockstore.storage.plugins.module_utils.units import GiB

MiB = 1024 ** 2
EXTENT = 4 * MiB
VOL = Volume(id="11111111-1111-4111-8111-111111111111", name="data", backend="lv", size=1)
SNAP = Snapshot(id="22222222-2222-4222-8222-222222222222", name="s1", backend="lv", volume_id=VOL.id, volume_size=1)
NEW = Volume(id="33333333-3333-4333-8333-333333333333", name="copy", backend="lv", size=2)


class FakeLvm:
    """One volume group 'vg0' of `extents` 4 MiB extents; LVs as lvs reports them."""

    def __init__(self, extents: int = 4000, pool: bool = False) -> None:
        self.extents = extents
        self.lvs: dict[str, dict] = {}
        self.commands: list[list[str]] = []
        if pool:
            self.lvs["vg0-pool"] = self._row("vg0-pool", 100 * EXTENT, "twi-a-tz--", "thin-pool", data="25.00")

    @staticmethod
    def _row(name, size, attr, segtype, pool="", origin="", origin_size="", data=""):
        return {"lv_name": name, "lv_size": str(size), "lv_attr": attr, "segtype": segtype, "pool_lv": pool,
                "origin": origin, "origin_size": origin_size, "data_percent": data}

    def used(self) -> int:
        return sum(int(r["lv_size"]) // EXTENT for r in self.lvs.values() if r["segtype"] != "thin")

    def __call__(self, argv, **_kwargs):
        argv = list(argv)
        self.commands.append(argv)
        out = ""
        if argv[0] == "vgs":
            free = self.extents - self.used()
            row = {"vg_name": "vg0", "vg_size": str(self.extents * EXTENT), "vg_free": str(free * EXTENT),
                   "vg_extent_size": str(EXTENT), "vg_extent_count": str(self.extents), "vg_free_count": str(free)}
            out = json.dumps({"report": [{"vg": [row, dict(row, vg_name="other")]}]})
        elif argv[0] == "lvs":
            hidden = self._row("[vg0-pool_tdata]", EXTENT, "Twi-ao----", "linear")
            out = json.dumps({"report": [{"lv": [*self.lvs.values(), hidden]}]})
        elif argv[0] == "lvcreate":
            name = argv[argv.index("-n") + 1]
            target = argv[-1].split("/")[-1]
            if "-s" in argv:
                origin = self.lvs[target]
                thin = "-L" not in argv
                size = int(origin["lv_size"]) if thin else int(argv[argv.index("-L") + 1][:-1])
                self.lvs[name] = self._row(name, size, "Vwi-a-tz--" if thin else "swi-a-s---",
                                           "thin" if thin else "linear", origin=target,
                                           origin_size="" if thin else origin["lv_size"])
            elif "-T" in argv:
                self.lvs[name] = self._row(name, int(argv[argv.index("-V") + 1][:-1]), "Vwi-a-tz--", "thin",
                                           pool=target, data="0.00")
            else:
                self.lvs[name] = self._row(name, int(argv[argv.index("-L") + 1][:-1]), "-wi-a-----", "linear")
        elif argv[0] == "lvextend":
            self.lvs[argv[-1].split("/")[1]]["lv_size"] = str(int(argv[2][:-1]))
        elif argv[0] == "lvremove":
            del self.lvs[argv[-1].split("/")[1]]
        elif argv[0] == "lvrename":
            self.lvs[argv[3]] = dict(self.lvs.pop(argv[2]), lv_name=argv[3])
        elif argv[0] == "lvchange":
            row = self.lvs[argv[-1].split("/")[1]]
            assert argv[1] == "-ay" or "o" not in row["lv_attr"][5:6], "an open LV deactivated"
            row["lv_attr"] = row["lv_attr"][:4] + ("a" if argv[1] == "-ay" else "-") + row["lv_attr"][5:]
        elif argv[0] == "lvconvert":
            del self.lvs[argv[-1].split("/")[1]]
        return subprocess.CompletedProcess(argv, 0, out, "")

    def changes(self) -> list[list[str]]:
        return [c for c in self.commands if c[0] not in ("vgs", "lvs")]


@pytest.fixture(name="fake")
def fixture_fake(monkeypatch):
    fake = FakeLvm()
    monkeypatch.setattr(lvm_module, "run", fake)
    return fake


@pytest.fixture(name="thin_fake")
def fixture_thin_fake(monkeypatch):
    """A group with its thin pool vg0-pool, and a thin volume VOL in it."""
    fake = FakeLvm(pool=True)
    monkeypatch.setattr(lvm_module, "run", fake)
    lvm_driver(lvm_type="thin").create_volume(VOL)
    return fake


def lvm_driver(**options):
    return build_driver({"name": "lv", "driver": "lvm", "volume_group": "vg0", **options})


def test_options_are_cinders_names_and_defaults():
    conf = lvm_driver().conf
    assert conf["volume_group"] == "vg0" and conf["lvm_type"] == "default"
    assert conf["volume_clear"] == "zero" and conf["volume_clear_size"] == 0
    assert build_driver({"name": "lv", "driver": "lvm"}).conf["volume_group"] == "cinder-volumes"


@pytest.mark.parametrize(("options", "option"), [
    ({"volume_group": "../etc"}, "backend.volume_group"),
    ({"volume_group": "-vg"}, "backend.volume_group"),
    ({"lvm_type": "thick"}, "backend.lvm_type"),
    ({"volume_clear": "shred"}, "backend.volume_clear"),
])
def test_bad_options_are_refused_naming_the_option(options, option):
    with pytest.raises(InvalidParameter) as caught:
        lvm_driver(**options)
    assert caught.value.option == option


def test_report_parsing_and_extent_rounding():
    rows = lvm_module.parse_report(json.dumps({"report": [{"lv": [{"lv_name": "a", "lv_size": "4194304",
                                                                   "data_percent": "12.50"}]}]}), "lv")
    assert rows == [{"lv_name": "a", "lv_size": 4194304, "data_percent": "12.50"}]
    assert lvm_module.data_percent(rows[0]) == 12.5
    assert lvm_module.data_percent({"data_percent": ""}) is None
    assert lvm_module.extents_for(GiB, EXTENT) == 256
    assert lvm_module.extents_for(GiB + 1, EXTENT) == 257
    assert lvm_module.extents_for(GiB, 3 * MiB) == 342  # not a divisor of a GiB: rounded up
    with pytest.raises(DriverError, match="cannot read the lvs report"):
        lvm_module.parse_report("WARNING: not json", "lv")


def test_missing_volume_group_is_refused_naming_it(fake):
    driver = build_driver({"name": "lv", "driver": "lvm", "volume_group": "nope"})
    with pytest.raises(DriverError) as caught:
        driver.check_setup()
    assert caught.value.option == "backend.volume_group"
    assert "no volume group 'nope'" in str(caught.value) and "other, vg0" in str(caught.value)
    lvm_driver().check_setup()  # positive control: the group that exists


def test_thin_without_its_pool_is_refused_before_any_change(fake):
    with pytest.raises(DriverError) as caught:
        lvm_driver(lvm_type="thin").create_volume(VOL)
    assert caught.value.option == "backend.lvm_type" and "vg0/vg0-pool" in str(caught.value)
    assert fake.changes() == []
    fake.lvs["vg0-pool"] = FakeLvm(pool=True).lvs["vg0-pool"]
    data = lvm_driver(lvm_type="thin").create_volume(VOL)
    assert data["lvm_type"] == "thin"
    assert fake.changes() == [["lvcreate", "--yes", "-n", f"volume-{VOL.id}", "-V", f"{GiB}b", "-T", "vg0/vg0-pool"]]


def test_auto_is_thick_without_the_pool(fake):
    assert lvm_driver(lvm_type="auto").create_volume(VOL)["lvm_type"] == "thick"
    assert fake.changes() == [["lvcreate", "--yes", "-n", f"volume-{VOL.id}", "-L", f"{GiB}b", "vg0"]]


def test_not_enough_free_extents_is_refused_before_any_change(monkeypatch):
    fake = FakeLvm(extents=300)
    monkeypatch.setattr(lvm_module, "run", fake)
    driver = lvm_driver()
    driver.create_volume(VOL)  # 256 extents of 300
    with pytest.raises(DriverError) as caught:
        driver.create_snapshot(SNAP, VOL)  # a COW area as large as the volume
    assert caught.value.option == "backend.volume_group" and "needs 256 extents" in str(caught.value)
    with pytest.raises(DriverError, match="needs 256 extents"):
        driver.extend_volume(VOL, 2)
    assert [c[0] for c in fake.changes()] == ["lvcreate"]


def test_thick_lifecycle_commands(fake):
    driver = lvm_driver(volume_clear_size=10)
    driver.create_volume(VOL)
    snap_data, _volume_data = driver.create_snapshot(SNAP, VOL)
    assert snap_data == {"volume_group": "vg0", "lv": f"_snapshot-{SNAP.id}", "lvm_type": "thick"}
    made = driver.create_volume_from_snapshot(NEW, SNAP)
    assert made["copied_from"] == f"_snapshot-{SNAP.id}"
    new_lv = f"/dev/vg0/volume-{NEW.id}"
    assert ["dd", f"if=/dev/vg0/_snapshot-{SNAP.id}", f"of={new_lv}", "bs=1M", f"count={GiB}",
            "iflag=direct,count_bytes", "oflag=direct", "conv=fdatasync", "status=none"] in fake.commands
    assert fake.lvs[f"volume-{NEW.id}"]["lv_size"] == str(2 * GiB)
    driver.delete_volume(NEW)
    assert fake.changes()[-2][:3] == ["dd", "if=/dev/zero", f"of={new_lv}"]
    assert fake.changes()[-2][4] == f"count={10 * MiB}"
    assert driver.list_volume_ids() == [VOL.id] and driver.list_snapshot_ids() == [SNAP.id]


def test_thick_clone_copies_from_a_temporary_snapshot_that_goes(fake):
    driver = lvm_driver(volume_clear="none")
    driver.create_volume(VOL)
    made, _source_data = driver.create_cloned_volume(NEW, VOL)
    assert made["copied_from"] == f"volume-{VOL.id}"
    assert [c[0] for c in fake.changes()] == ["lvcreate", "lvcreate", "lvcreate", "dd", "lvremove"]
    assert fake.changes()[1][-1] == f"vg0/volume-{VOL.id}" and f"clone-base-{NEW.id}" in fake.changes()[1]
    assert sorted(fake.lvs) == sorted([f"volume-{VOL.id}", f"volume-{NEW.id}"])
    assert driver.list_leftovers() == []


def test_thin_copies_are_thin_snapshots_without_data_copy(thin_fake):
    fake = thin_fake
    driver = lvm_driver(lvm_type="thin")
    driver.create_snapshot(SNAP, VOL)
    driver.create_volume_from_snapshot(NEW, SNAP)
    assert ["lvcreate", "--yes", "-s", "-n", f"_snapshot-{SNAP.id}", "-kn", f"vg0/volume-{VOL.id}"] in fake.commands
    assert ["lvextend", "-L", f"{2 * GiB}b", f"vg0/volume-{NEW.id}"] in fake.commands
    assert not any(c[0] == "dd" for c in fake.commands)
    stats = driver.get_stats()
    assert stats["total_capacity_gb"] == round(100 * EXTENT / GiB, 2) and stats["volume_count"] == 2
    assert stats["provisioned_capacity_gb"] == 3.0


def test_thin_revert_swaps_and_a_killed_revert_is_finished(thin_fake):
    fake = thin_fake
    driver = lvm_driver(lvm_type="thin")
    driver.create_snapshot(SNAP, VOL)
    driver.revert_to_snapshot(VOL, SNAP)
    assert fake.lvs[f"volume-{VOL.id}"]["origin"] == f"_snapshot-{SNAP.id}"
    assert f"_snapshot-{SNAP.id}" in fake.lvs and driver.list_leftovers() == []
    # Killed after the old LV was renamed away: the next revert completes the swap.
    fake.lvs[f"volume-{VOL.id}.old"] = dict(fake.lvs.pop(f"volume-{VOL.id}"), lv_name=f"volume-{VOL.id}.old")
    fake.lvs[f"volume-{VOL.id}.revert"] = FakeLvm._row(f"volume-{VOL.id}.revert", GiB, "Vwi-a-tz--", "thin")
    assert driver.list_leftovers() == [f"volume-{VOL.id}.old", f"volume-{VOL.id}.revert"]
    driver.revert_to_snapshot(VOL, SNAP)
    assert driver.list_leftovers() == [] and f"volume-{VOL.id}" in fake.lvs


def test_thick_revert_merges_then_makes_the_snapshot_again_and_refuses_an_open_volume(fake):
    driver = lvm_driver()
    driver.create_volume(VOL)
    driver.create_snapshot(SNAP, VOL)
    fake.lvs[f"volume-{VOL.id}"]["lv_attr"] = "owi-aos---"
    with pytest.raises(Conflict) as caught:
        driver.revert_to_snapshot(VOL, SNAP)
    assert caught.value.option == "revert_to" and "is open" in str(caught.value)
    assert [c[0] for c in fake.changes()] == ["lvcreate", "lvcreate"]
    fake.lvs[f"volume-{VOL.id}"]["lv_attr"] = "owi-a-s---"
    driver.revert_to_snapshot(VOL, SNAP)
    assert [c[0] for c in fake.changes()][2:] == ["lvconvert", "lvcreate"]
    assert f"_snapshot-{SNAP.id}" in fake.lvs


def test_a_thick_volume_with_snapshots_is_extended_inactive_and_refused_open(fake):
    driver = lvm_driver()
    driver.create_volume(VOL)
    driver.create_snapshot(SNAP, VOL)
    fake.lvs[f"volume-{VOL.id}"]["lv_attr"] = "owi-aos---"
    with pytest.raises(Conflict) as caught:
        driver.extend_volume(VOL, 2)
    assert caught.value.option == "size" and "has snapshots" in str(caught.value)
    assert [c[0] for c in fake.changes()] == ["lvcreate", "lvcreate"]
    fake.lvs[f"volume-{VOL.id}"]["lv_attr"] = "owi-a-s---"
    driver.extend_volume(VOL, 2)
    assert fake.changes()[2:] == [["lvchange", "-an", f"vg0/volume-{VOL.id}"],
                                  ["lvextend", "-L", f"{2 * GiB}b", f"vg0/volume-{VOL.id}"],
                                  ["lvchange", "-ay", f"vg0/volume-{VOL.id}"]]
    assert fake.lvs[f"volume-{VOL.id}"]["lv_attr"][4] == "a"
    driver.extend_volume(VOL, 2)  # again: nothing to do
    assert len(fake.changes()) == 5


def test_allocated_bytes_of_a_thin_volume_is_its_data_percent(thin_fake):
    fake = thin_fake
    driver = lvm_driver(lvm_type="thin")
    fake.lvs[f"volume-{VOL.id}"]["data_percent"] = "25.00"
    assert driver.allocated_bytes(VOL) == GiB // 4
    assert driver.allocated_bytes(NEW) is None


def test_adopt_refuses_snapshots_and_renames_a_plain_lv(fake):
    driver = lvm_driver()
    fake.lvs["legacy"] = FakeLvm._row("legacy", GiB, "owi-a-s---", "linear")
    fake.lvs["legacy-snap"] = FakeLvm._row("legacy-snap", GiB, "swi-a-s---", "linear", origin="legacy")
    with pytest.raises(DriverError, match="has snapshots"):
        driver.find_existing("legacy")
    with pytest.raises(DriverError, match="is a snapshot"):
        driver.find_existing("legacy-snap")
    del fake.lvs["legacy-snap"]
    assert driver.find_existing("legacy") == {"object": "/dev/vg0/legacy", "size": GiB, "format": "raw"}
    driver.adopt_volume(VOL, "legacy")
    assert driver.list_volume_ids() == [VOL.id]


def test_lvm_tools_missing_is_named(monkeypatch):
    def absent(argv, **_kwargs):
        raise FileNotFoundError(argv[0])
    monkeypatch.setattr(lvm_module, "run", absent)
    with pytest.raises(MissingDependency, match="install lvm2"):
        lvm_driver().check_setup()
