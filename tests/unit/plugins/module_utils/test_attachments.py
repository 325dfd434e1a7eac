# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connections and attachments: planning, statuses, multiattach, undo and secrets.

The driver and the host (host_devices.LocalHost, the core's seam to the host) are stand-ins
here (pure logic); the real ones are exercised by the integration targets storage_attachment
and storage_attachment_iscsi.
"""

from __future__ import annotations

import json

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils.attachments import AttachmentResource
from ansible_collections.blockstore.storage.plugins.module_utils.drivers.base import Driver
from ansible_collections.blockstore.storage.plugins.module_utils.errors import (
    BlockstoreError,
    Conflict,
    DriverError,
    InvalidParameter,
)
from ansible_collections.blockstore.storage.plugins.module_utils.handler import Task, dispatch
from ansible_collections.blockstore.storage.plugins.module_utils.host_devices import LocalHost
from ansible_collections.blockstore.storage.plugins.module_utils.objects import RecordSet, Volume, to_record
from ansible_collections.blockstore.storage.plugins.module_utils.persistence import open_store
from ansible_collections.blockstore.storage.plugins.module_utils.queries import VolumeInfo
from ansible_collections.blockstore.storage.plugins.module_utils.sealing import Sealer
from ansible_collections.blockstore.storage.plugins.module_utils.transaction import run_task
from ansible_collections.blockstore.storage.plugins.module_utils.volumes import VolumeResource

HERE = {"host": "here", "initiator": "iqn.2005-03.test:here", "platform": "x86_64", "os_type": "linux"}
PEER = {"host": "peer", "initiator": "iqn.2005-03.test:peer"}


class FakeDriver(Driver):
    name = "fake"

    def __init__(self) -> None:
        super().__init__("lab", {})
        self.exports: dict[str, str] = {}
        self.fail_connect = False
        self.setups = 0  # check_setup calls: on a file backend it creates the backend's directory

    def check_setup(self):
        self.setups += 1

    def initialize_connection(self, volume, connection):
        if self.fail_connect:
            raise DriverError("tgtadm failed")
        password = (connection.connection_info.get("data") or {}).get("auth_password") or f"pw-{connection.host}"
        self.exports[connection.id] = password
        return {"driver_volume_type": "iscsi",
                "data": {"target_iqn": f"iqn.test:volume-{volume.id}", "target_portal": "127.0.0.1:3260",
                         "target_lun": 1, "auth_method": "CHAP", "auth_username": f"bs-{connection.host}",
                         "auth_password": password}}

    def terminate_connection(self, volume, connection):
        self.exports.pop(connection.id, None)

    def export_expected(self, connection):
        return connection.connection_info.get("driver_volume_type") == "iscsi"


class Host(LocalHost):
    """The host as a stand-in: devices that exist until detached or made to vanish, and loop
    devices or daemons a killed task may have left (`loops`, {device: backing file})."""

    def __init__(self) -> None:
        self.devices: dict[str, dict] = {}
        self.fail = False
        self.seen_info: list[dict] = []
        self.loops: dict[str, str] = {}
        self.busy: list[str] = []
        self.seen_attach: list[tuple] = []  # (read_only, method) of each attach
        self.seen_multipath: list[bool] = []  # multipath of each attach
        self.sizes: dict[str, int] = {}  # device path: size, when not 1 GiB
        self.grown: list[tuple] = []  # (device path, size) of each grow
        self.uid = 0  # the user the module runs as (LocalHost.euid)
        self.asked_properties = False
        self.hostname = "here"  # the host the module runs on (another, to play a second host)
        self.discarded: list[str] = []  # devices removed as stale (their export gone)

    def name(self):
        return self.hostname

    def euid(self):
        return self.uid

    def properties(self):
        self.asked_properties = True
        if self.hostname == "here":
            return dict(HERE)
        return {"host": self.hostname, "initiator": f"iqn.2005-03.test:{self.hostname}"}

    def run_dir(self):
        return "/run/blockstore-test"

    def attach(self, connection_info, volume_id, read_only, method, multipath=False):
        if isinstance(self.fail, Exception):
            raise self.fail  # pylint: disable=raising-bad-type  # an exception instance, checked just above
        if self.fail:
            raise DriverError("attach: qemu-storage-daemon could not open the volume: login failed")
        self.seen_info.append(connection_info)
        self.seen_attach.append((read_only, method))
        self.seen_multipath.append(multipath)
        device = {"path": f"/dev/loop{len(self.devices)}", "type": "block", "method": "userspace",
                  "protocol": "iscsi", "backing_file": "/run/x/export"}
        self.devices[device["path"]] = device
        return device

    def detach(self, device, connection_info, stale=False):
        if device:
            self.devices.pop(device["path"], None)
            if stale:
                self.discarded.append(device["path"])

    def present(self, device):
        return bool(device) and device.get("path") in self.devices

    def size(self, device):
        return self.sizes.get(device["path"], 1 << 30)

    def grow(self, device, connection_info, size_bytes):
        self.grown.append((device["path"], size_bytes))
        self.sizes[device["path"]] = size_bytes

    def users(self, device):
        return list(self.busy) if device.get("path") in self.devices else []

    def bound_loops(self):
        return dict(self.loops)

    def bound_here(self, device, backing):
        return True  # the stand-in's loop devices are all its own

    def loop_users(self, device):
        return list(self.busy)

    def free_loop(self, device, path):
        self.loops.pop(device)

    def stop_daemon(self, directory):
        pass


@pytest.fixture
def lab():
    host = Host()
    store = open_store({"storage": "memory"})
    for name, multi in (("v1", False), ("shared", True)):
        store.apply(upserts=[to_record(Volume(id=f"00000000-0000-0000-0000-00000000000{1 + multi}", name=name,
                                              backend="lab", size=1, status="available", multiattach=multi))])

    class Lab:
        driver = FakeDriver()
        sent: list = []  # (records, key) of every host half shipped

        def run(self, check_mode=False, sealer="store", handler=AttachmentResource, whoami=None, **params):
            """The task as the action plugin runs it: the store side here, the module's side
            shipped with the records (and the task's key to their secrets, unless sealer=None)."""
            if handler is AttachmentResource:
                params.setdefault("state", "attached")
            task = Task(params, check_mode, driver=self.driver, host=host, whoami=whoami)

            def ship(records, new_ids, key):
                self.sent.append((records, key))
                seal = Sealer(key=key) if key and sealer == "store" else None
                sent = Task(params, check_mode, driver=self.driver, records=records, new_ids=new_ids, sealer=seal,
                            host=host)
                return dispatch(handler, sent)
            return dispatch(handler, task, store=store, ship=ship)[0]

        def volume(self, name):
            return store.find("lab", "volume", name=name)[0]

        def connections(self):
            return store.find("lab", "connection")

    lab = Lab()
    lab.store, lab.host = store, host
    return lab


def test_attach_connects_attaches_and_marks_the_volume_in_use(lab):
    result = lab.run(volume="v1")
    assert result["changed"] and len(result["actions"]) == 3
    assert result["attachment"]["status"] == "attached"
    assert result["attachment"]["device"] == {"path": "/dev/loop0", "type": "block", "method": "userspace",
                                              "protocol": "iscsi"}
    assert lab.volume("v1")["status"] == "in-use"
    assert lab.host.seen_info[0]["data"]["auth_password"] == "pw-here"  # unsealed for the host only
    assert lab.host.seen_info[0]["data"]["initiator_name"] == HERE["initiator"]
    assert not lab.run(volume="v1")["changed"]


def test_multipath_is_passed_to_the_hosts_attach_and_refused_when_not_a_boolean(lab):
    with pytest.raises(InvalidParameter, match=r"^multipath: 'yes' is not a boolean") as caught:
        lab.run(volume="v1", multipath="yes")
    assert caught.value.option == "multipath" and not lab.connections()  # refused before anything was made
    lab.run(volume="v1", multipath=True)
    lab.run(volume="shared")
    assert lab.host.seen_multipath == [True, False]


def test_secrets_are_sealed_in_the_store_and_masked_in_results(lab):
    result = lab.run(volume="v1")
    assert result["attachment"]["connection_info"]["data"]["auth_password"] == "********"
    stored = json.dumps(lab.store.all_records())
    assert "pw-here" not in stored and "sealed:v1:" in stored
    assert "pw-here" not in json.dumps(result)


def test_a_host_is_sent_its_own_connection_and_of_the_others_only_who_they_are(lab):
    lab.run(volume="shared", state="connected", connector=PEER)
    lab.run(volume="shared")
    records, key = lab.sent[-1]
    peer = next(r for r in records if r["kind"] == "connection" and r["host"] == "peer")
    assert peer["connector"] == PEER and "connection_info" not in peer and "pw-peer" not in json.dumps(records)
    assert lab.host.seen_info[0]["data"]["auth_password"] == "pw-here"  # positive control: its own, opened
    lab.run(volume="shared", state="detached")  # the volume stays in use: the host knew of the peer
    assert lab.volume("shared")["status"] == "in-use"
    records, key = lab.sent[-1]
    mine = next(r for r in records if r["kind"] == "connection" and r["host"] == "here")
    assert Sealer(key=key).unseal(mine["connection_info"]["data"]["auth_password"]) == "pw-here"
    assert key != lab.store.sealer.key()
    stored = next(r for r in lab.connections() if r["host"] == "peer")  # the peer's record kept whole
    assert lab.store.sealer.unseal(stored["connection_info"]["data"]["auth_password"]) == "pw-peer"


def test_a_task_for_another_hosts_connector_is_sent_that_connection(lab):
    lab.run(volume="shared")
    lab.run(volume="shared", state="connected", connector=PEER)
    lab.run(volume="shared", state="detached", connector=PEER)
    records, _key = lab.sent[-1]
    assert [r["host"] for r in records if r["kind"] == "connection" and "connection_info" in r] == ["peer"]
    assert lab.driver.exports and all(r["host"] != "peer" for r in lab.connections())


def test_a_host_that_cannot_say_its_name_leaves_no_pending_record(lab):
    lab.run(volume="shared", state="connected", connector=PEER)

    def unreachable():
        raise DriverError("storage_host_info on the task's host failed: unreachable")
    before = lab.store.all_records()
    with pytest.raises(DriverError, match="unreachable"):
        lab.run(volume="shared", whoami=unreachable)
    assert lab.store.all_records() == before and len(lab.connections()) == 1
    assert lab.run(volume="shared")["changed"]  # positive control: with its name, the same task attaches


def test_the_store_gate_seals_what_a_module_without_the_key_returns(lab):
    lab.run(volume="v1", sealer=None)
    assert "pw-here" not in json.dumps(lab.store.all_records())


def test_check_mode_changes_nothing(lab):
    result = lab.run(check_mode=True, volume="v1")
    assert result["changed"] and result["diff"]["before"] == {} and result["diff"]["after"]["status"] == "attached"
    assert lab.connections() == [] and lab.host.devices == {} and lab.driver.exports == {}
    assert lab.volume("v1")["status"] == "available"


def test_a_second_host_needs_multiattach(lab):
    lab.run(volume="v1")
    with pytest.raises(Conflict, match="not multiattach"):
        lab.run(volume="v1", state="connected", connector=PEER)
    lab.run(volume="shared")
    peer = lab.run(volume="shared", state="connected", connector=PEER)
    assert peer["changed"] and peer["attachment"]["device"] is None and peer["attachment"]["host"] == "peer"
    assert not lab.host.devices.get("/dev/loop2")  # no local work for another host's connector


def test_initiator_names_must_be_unique(lab):
    lab.run(volume="shared")
    with pytest.raises(Conflict, match="initiator"):
        lab.run(volume="shared", state="connected", connector={"host": "clone", "initiator": HERE["initiator"]})


def test_detached_removes_device_and_export_and_frees_the_volume_after_the_last(lab):
    lab.run(volume="shared")
    lab.run(volume="shared", state="connected", connector=PEER)
    result = lab.run(volume="shared", state="detached")
    assert result["changed"] and result["attachment"]["status"] == "detached"
    assert lab.host.devices == {} and lab.volume("shared")["status"] == "in-use"
    lab.run(volume="shared", state="detached", connector=PEER)
    assert lab.volume("shared")["status"] == "available" and lab.driver.exports == {}
    assert not lab.run(volume="shared", state="detached")["changed"]
    assert not lab.run(volume="gone", state="detached")["changed"]


def test_connected_removes_the_local_device_and_keeps_the_connection(lab):
    lab.run(volume="v1")
    result = lab.run(volume="v1", state="connected")
    assert result["changed"] and result["attachment"]["status"] == "connected"
    assert lab.host.devices == {} and len(lab.driver.exports) == 1


def test_a_vanished_device_is_made_again(lab):
    lab.run(volume="v1")
    lab.host.devices.clear()  # a reboot
    result = lab.run(volume="v1")
    assert result["changed"] and "vanished" in result["actions"][0]
    assert len(lab.host.devices) == 1


def test_a_failed_attach_leaves_no_connection_and_no_export(lab):
    lab.host.fail = True
    with pytest.raises(DriverError, match="removed again") as caught:
        lab.run(volume="v1")
    assert "login failed" in str(caught.value)
    assert lab.connections() == [] and lab.driver.exports == {}
    assert lab.volume("v1")["status"] == "available"


def test_attaching_without_root_is_refused_saying_why_and_leaves_no_record(lab):
    lab.host.uid = 65534
    with pytest.raises(Conflict) as caught:
        lab.run(volume="v1")
    message = str(caught.value)
    assert message.startswith("state attached: making or removing a block device on this host needs root")
    assert "become: true" in message and "uid 65534" in message
    assert "losetup" in message and "privsep" in message
    # Refused before anything: no connector properties gathered, no export, no record left attaching.
    assert not lab.host.asked_properties
    assert lab.connections() == [] and lab.driver.exports == {} and lab.host.devices == {}
    assert lab.volume("v1")["status"] == "available"
    # Control: as root the same task attaches.
    lab.host.uid = 0
    assert lab.run(volume="v1")["attachment"]["status"] == "attached"
    # Detaching the device needs root too; connecting for another host does not.
    lab.host.uid = 65534
    with pytest.raises(Conflict, match=r"^state detached: making or removing a block device"):
        lab.run(volume="v1", state="detached")
    assert lab.connections()[0]["status"] == "attached" and lab.host.devices
    lab.run(volume="shared", state="connected", connector=PEER)


def test_a_failed_connect_stores_nothing(lab):
    lab.driver.fail_connect = True
    with pytest.raises(DriverError, match="tgtadm failed"):
        lab.run(volume="v1")
    assert lab.connections() == []


@pytest.mark.parametrize("other", ["peer", "alpha"])  # a host name sorting after this host's ("here") and before
def test_attached_must_describe_this_host(lab, other):
    with pytest.raises(Conflict, match="state connected"):
        lab.run(volume="v1", connector={**PEER, "host": other})
    assert lab.connections() == []
    # Positive control: the connector of this host attaches.
    assert lab.run(volume="v1", connector=HERE)["attachment"]["status"] == "attached"


def test_mode_change_needs_a_detach(lab):
    lab.run(volume="v1")
    with pytest.raises(Conflict, match="detach it first"):
        lab.run(volume="v1", mode="ro")


def test_the_controller_plan_reserves_an_id_and_writes_a_pending_record_first():
    volume = Volume(id="00000000-0000-0000-0000-000000000009", name="v", backend="lab", size=1, status="available")
    plan = AttachmentResource(RecordSet("lab", [to_record(volume)]), {"volume": "v", "state": "attached"}).plan()
    assert plan.steps == [] and len(plan.new_ids()) == 1
    pending, = plan.pending()
    assert pending["id"] == plan.new_ids()[0] and pending["volume_id"] == volume.id
    assert pending["status"] == "attaching" and pending["host"] == "" and pending["kind"] == "connection"


def run_killed(lab, **params):
    """Run a task whose module process dies: the executor returns no changes (as the action plugin
    does when the module's result has none)."""
    params.setdefault("state", "attached")
    return run_task(lab.store, AttachmentResource, "lab", params, False, lambda records, new_ids: ({}, None))


@pytest.mark.parametrize("state, status", [("attached", "attaching"), ("connected", "connecting"),
                                           ("detached", "detaching")])
def test_a_killed_task_leaves_its_pending_record_visible(lab, state, status):
    run_killed(lab, volume="v1", state=state)
    left, = lab.connections()
    assert left["status"] == status and left["host"] == ""
    assert lab.volume("v1")["status"] == "available"


def test_a_pending_record_goes_when_the_module_finishes(lab):
    lab.run(volume="v1")
    conn, = lab.connections()
    assert conn["host"] == "here" and conn["status"] == "attached"
    assert not lab.run(volume="v1")["changed"] and len(lab.connections()) == 1
    lab.run(volume="v1", state="detached")
    assert lab.connections() == []


def test_the_next_run_cleans_up_after_a_killed_attach(lab):
    run_killed(lab, volume="v1")
    killed, = lab.connections()
    # The killed module had made a loop device on the volume's file.
    lab.host.loops = {"/dev/loop7": "/srv/lab/volume-00000000-0000-0000-0000-000000000001"}
    lab.driver.local_path = lambda volume_id: f"/srv/lab/volume-{volume_id}"
    result = lab.run(volume="v1")
    assert result["changed"] and "interrupted task" in result["actions"][0]
    assert lab.host.loops == {}
    conn, = lab.connections()
    assert conn["id"] == killed["id"] and conn["status"] == "attached"  # the killed task's id is taken over
    assert not lab.run(volume="v1")["changed"]


def test_a_device_left_by_a_killed_task_in_use_is_refused(lab):
    run_killed(lab, volume="v1")
    lab.host.loops = {"/dev/loop7": "/srv/lab/volume-x"}
    lab.host.busy = ["/mnt/data"]
    lab.driver.local_path = lambda volume_id: "/srv/lab/volume-x"
    with pytest.raises(DriverError, match="interrupted task and is in use"):
        lab.run(volume="v1")
    assert lab.connections()[0]["host"] == ""


def test_a_detach_after_a_killed_task_forgets_it_and_frees_the_volume(lab):
    lab.run(volume="v1")
    run_killed(lab, volume="v1", state="detached")
    assert len(lab.connections()) == 2
    result = lab.run(volume="v1", state="detached")
    assert result["changed"] and lab.connections() == [] and lab.volume("v1")["status"] == "available"
    run_killed(lab, volume="v1", state="detached")
    assert lab.run(volume="v1", state="detached")["changed"] and lab.connections() == []


def test_a_detach_after_a_killed_attach_keeps_the_volume_in_use_by_another_host(lab):
    lab.run(volume="shared", state="connected", connector=PEER)
    run_killed(lab, volume="shared")
    result = lab.run(volume="shared", state="detached")
    assert result["changed"] and [c["host"] for c in lab.connections()] == ["peer"]
    assert lab.volume("shared")["status"] == "in-use"  # the peer still uses it


def test_a_detach_frees_a_volume_whose_only_record_here_is_a_killed_tasks(lab):
    # Marked in-use with no connection but a killed task's pending record (as an imported or hand-repaired
    # state can be): the detach forgets the record and frees the volume, as after a real connection.
    volume = lab.volume("v1")
    lab.store.apply(upserts=[dict(volume, status="in-use")])
    run_killed(lab, volume="v1")
    result = lab.run(volume="v1", state="detached")
    assert result["changed"] and lab.connections() == []
    assert lab.volume("v1")["status"] == "available"


def test_force_disconnect_plan(lab):
    lab.run(volume="shared")
    lab.run(volume="shared", state="connected", connector=PEER)
    records = RecordSet("lab", lab.store.all_records())

    def plan(force):
        resource = VolumeResource(records, {"name": "shared", "state": "absent", "force": force}, host=lab.host)
        resource.prepare()
        return resource.plan()
    with pytest.raises(Conflict, match="force: true"):
        plan(force=False)
    steps = plan(force=True).steps[:-1]  # the connections' steps, before the delete
    messages = sorted(s.message for s in steps)
    assert messages[0].startswith("detach /dev/loop0")
    assert messages[1] == "disconnect volume 'shared' from peer"


def test_a_forced_delete_leaves_another_hosts_device_to_go_stale_whatever_uses_that_path_here(lab):
    lab.run(volume="shared", state="connected", connector=PEER)
    peer = lab.connections()[0]
    lab.store.apply(upserts=[dict(peer, device={"path": "/dev/loop7", "type": "block"}, status="attached")])
    lab.host.users = lambda device: ["/mnt/other"]  # /dev/loop7 here is another volume's, mounted
    resource = VolumeResource(RecordSet("lab", lab.store.all_records()),
                              {"name": "shared", "state": "absent", "force": True}, host=lab.host)
    resource.prepare()
    steps = resource.plan().steps[:-1]
    assert [s.message for s in steps] == ["disconnect volume 'shared' from peer (its device there goes stale)"]


def test_attach_asks_the_host_for_the_method_given_or_auto_and_read_only_for_mode_ro(lab):
    lab.run(volume="v1")
    lab.run(volume="shared", method="userspace", mode="ro")
    assert lab.host.seen_attach == [(False, "auto"), (True, "userspace")]


@pytest.mark.parametrize("first, second", [("ro", "rw"), ("rw", "ro")])
def test_changing_the_mode_of_a_connection_needs_a_detach_first(lab, first, second):
    lab.run(volume="v1", mode=first)
    before = lab.store.all_records()
    with pytest.raises(Conflict, match=f"in mode {first}; detach it first to change the mode to {second}"):
        lab.run(volume="v1", mode=second)
    assert lab.store.all_records() == before
    assert lab.run(volume="v1", mode=first)["changed"] is False


def test_an_attached_device_smaller_than_its_volume_is_grown(lab):
    lab.run(volume="v1")
    lab.store.apply(upserts=[dict(lab.volume("v1"), size=2)])  # extended meanwhile
    result = lab.run(volume="v1")
    assert result["changed"] and result["actions"] == ["grow device /dev/loop0 to 2 GiB"]
    assert lab.host.grown == [("/dev/loop0", 2 << 30)]
    assert lab.run(volume="v1")["changed"] is False  # now as large as the volume
    lab.host.sizes["/dev/loop0"] = 3 << 30  # larger (grown by hand): never shrunk
    assert lab.run(volume="v1")["changed"] is False and len(lab.host.grown) == 1


def test_a_host_error_that_is_not_ours_is_named_with_its_type(lab):
    lab.host.fail = OSError(5, "Input/output error")
    with pytest.raises(DriverError, match=r"on here failed: OSError: \[Errno 5\] Input/output error"):
        lab.run(volume="v1")
    lab.host.fail = DriverError("loop: no free loop device")
    with pytest.raises(DriverError, match="attach volume 'v1' on here failed: loop: no free loop device"):
        lab.run(volume="v1")


def test_a_device_attached_on_another_host_is_detached_only_there(lab):
    lab.run(volume="shared", state="connected", connector=PEER)
    peer = lab.connections()[0]
    lab.store.apply(upserts=[dict(peer, device={"path": "/dev/loop7", "type": "block"}, status="attached")])
    before = lab.store.all_records()
    with pytest.raises(Conflict, match="attached on peer as /dev/loop7; run this task on that host to detach it"):
        lab.run(volume="shared", state="detached", connector=PEER)
    assert lab.store.all_records() == before


def test_volume_info_lists_each_connection_of_a_volume_without_secrets(lab):
    from ansible_collections.blockstore.storage.plugins.module_utils.queries import VolumeInfo
    lab.run(volume="shared")
    lab.run(volume="shared", state="connected", connector=dict(PEER, password="not-a-connector-field"))
    shown = lab.run(handler=VolumeInfo, name="shared")["volumes"][0]["connections"]
    assert [(c["host"], c["status"]) for c in shown] == [("here", "attached"), ("peer", "connected")]
    assert shown[0]["device"] == {"path": "/dev/loop0", "type": "block", "method": "userspace", "protocol": "iscsi"}
    assert shown[1]["device"] is None
    assert shown[1]["connector"] == {"host": "peer", "initiator": PEER["initiator"]}
    assert {c["id"] for c in shown} == {c["id"] for c in lab.connections()}
    text = json.dumps(shown)
    assert "pw-here" not in text and "pw-peer" not in text and "not-a-connector-field" not in text
    assert "auth_username" not in text and "sealed:" not in text
    # A volume nobody is connected to lists none.
    assert lab.run(handler=VolumeInfo, name="v1")["volumes"][0]["connections"] == []


def test_a_consumer_touches_only_what_it_attaches_not_the_backend(lab):
    # Exported to this host (as from the storage host): the backend is set up for the export.
    lab.run(volume="v1", state="connected", connector=HERE)
    assert lab.driver.setups == 1
    lab.driver.setups = 0
    # Attached, the device removed, attached again: host-side steps only, the backend is not set up here.
    assert lab.run(volume="v1")["changed"]
    assert lab.run(volume="v1", state="connected")["changed"]
    assert lab.run(volume="v1")["changed"]
    assert lab.driver.setups == 0 and lab.host.devices
    # Removing the export is backend work again.
    lab.run(volume="v1", state="detached")
    assert lab.driver.setups == 1 and not lab.driver.exports


def test_deleting_a_volume_after_a_killed_attach_frees_the_loop_device_it_left(lab):
    run_killed(lab, volume="v1")
    lab.host.loops = {"/dev/loop7": "/srv/lab/volume-00000000-0000-0000-0000-000000000001",
                      "/dev/loop8": "/srv/lab/volume-another"}
    lab.driver.local_path = lambda volume_id: f"/srv/lab/volume-{volume_id}"
    lab.driver.delete_volume = lambda volume: None
    result = lab.run(handler=VolumeResource, name="v1", state="absent")
    assert result["changed"] and any("interrupted task" in a for a in result["actions"])
    assert lab.host.loops == {"/dev/loop8": "/srv/lab/volume-another"}  # only the deleted volume's
    assert lab.store.find("lab", "volume", name="v1") == [] and lab.connections() == []


# A task split by the action plugin between the backend's host and the task's host (backend.host): the
# backend half is the task with state connected and the host's connector; the host half carries HOST_HALF.
HOST_HALF = {"_blockstore_half": "host"}


def test_the_host_half_of_a_split_detach_removes_only_the_device_here(lab):
    lab.run(volume="v1", state="connected", connector=HERE)  # the backend half of the attach
    lab.run(volume="v1", connector=HERE, **HOST_HALF)
    assert lab.host.devices and lab.driver.exports
    lab.driver.setups = 0
    result = lab.run(volume="v1", state="connected", connector=HERE, **HOST_HALF)
    assert result["changed"] and not lab.host.devices and lab.driver.exports and lab.driver.setups == 0
    conn, = lab.connections()
    assert conn["status"] == "connected" and conn["host"] == "here"
    lab.run(volume="v1", state="detached", connector=HERE)  # the backend half removes the export
    assert not lab.driver.exports and lab.connections() == []
    lab.driver.setups = 0
    # Again, with no connection at all: nothing is exported here, nothing recorded.
    result = lab.run(volume="v1", state="connected", connector=HERE, **HOST_HALF)
    assert not result["changed"] and lab.connections() == [] and not lab.driver.exports and lab.driver.setups == 0
    # Positive control: the same task unsplit exports.
    assert lab.run(volume="v1", state="connected", connector=HERE)["changed"] and lab.driver.exports


def test_the_host_half_of_a_split_attach_never_makes_the_export(lab):
    with pytest.raises(Conflict, match=r"connect volume 'v1' to here is a backend-side step") as refused:
        lab.run(volume="v1", connector=HERE, **HOST_HALF)
    assert refused.value.option == "backend.host"
    assert lab.connections() == [] and not lab.driver.exports and not lab.host.devices
    assert lab.volume("v1")["status"] == "available"
    # Positive control: once the backend half exported it, the host half attaches.
    lab.run(volume="v1", state="connected", connector=HERE)
    assert lab.run(volume="v1", connector=HERE, **HOST_HALF)["changed"] and lab.host.devices


@pytest.mark.parametrize("state, status", [("attached", "attaching"), ("connected", "connecting"),
                                           ("detached", "detaching")])
def test_a_killed_task_for_a_known_host_leaves_a_pending_record_naming_it(lab, state, status):
    run_killed(lab, volume="v1", state=state, connector=PEER)
    left, = lab.connections()
    assert left["status"] == status and left["host"] == "peer"


def test_a_killed_task_is_cleaned_up_on_the_host_its_record_names(lab):
    lab.driver.local_path = lambda volume_id: f"/srv/lab/volume-{volume_id}"
    run_killed(lab, volume="shared", connector=PEER)  # peer's attach died
    lab.host.loops = {"/dev/loop7": "/srv/lab/volume-00000000-0000-0000-0000-000000000002"}
    result = lab.run(volume="shared")  # this host attaches the same (multiattach) volume
    assert result["changed"] and not any("interrupted task" in a for a in result["actions"])
    assert lab.host.loops == {"/dev/loop7": "/srv/lab/volume-00000000-0000-0000-0000-000000000002"}
    assert [c["status"] for c in lab.connections() if c["host"] == "peer"] == ["attaching"]
    # Positive control: a killed task of this host is cleaned up here.
    run_killed(lab, volume="v1", connector=HERE)
    lab.host.loops["/dev/loop8"] = "/srv/lab/volume-00000000-0000-0000-0000-000000000001"
    result = lab.run(volume="v1")
    assert "interrupted task" in result["actions"][0] and "/dev/loop8" not in lab.host.loops
    conn, = [c for c in lab.connections() if c["volume_id"].endswith("1")]
    assert conn["host"] == "here" and conn["status"] == "attached"


# a forced detach of a host that is gone (forced_detach.py) ---------------------------------------------------
def attach_on(lab, hostname, volume):
    lab.host.hostname = hostname
    try:
        return lab.run(volume=volume)["attachment"]
    finally:
        lab.host.hostname = "here"


def info(lab, name):
    return lab.run(handler=VolumeInfo, name=name)["volumes"][0]


def test_a_forced_detach_removes_a_gone_hosts_export_without_it_and_records_its_device_stale(lab):
    peer = attach_on(lab, "peer", "shared")
    mine = lab.run(volume="shared")["attachment"]  # positive control: this host's attachment stays whole
    result = lab.run(volume="shared", state="detached", force=True, host="peer")
    assert result["changed"] and result["actions"] == [
        "disconnect volume 'shared' from peer without reaching it; its device there (/dev/loop0) is recorded stale"]
    assert result["attachment"]["status"] == "stale" and result["attachment"]["device"]["path"] == "/dev/loop0"
    assert peer["id"] not in lab.driver.exports and mine["id"] in lab.driver.exports
    assert "/dev/loop0" in lab.host.devices and lab.host.discarded == []  # nothing ran on peer
    listed = {c["host"]: (c["status"], c["stale"]) for c in info(lab, "shared")["connections"]}
    assert listed == {"peer": ("stale", True), "here": ("attached", False)}
    assert lab.volume("shared")["status"] == "in-use"
    assert not lab.run(volume="shared", state="detached", force=True, host="peer")["changed"]


def test_the_gone_host_back_removes_its_stale_device_on_its_next_detach(lab):
    attach_on(lab, "peer", "shared")
    lab.run(volume="shared", state="detached", force=True, host="peer")
    assert lab.volume("shared")["status"] == "available"  # a stale record keeps no volume in use
    lab.host.hostname = "peer"
    result = lab.run(volume="shared", state="detached")
    assert result["changed"] and result["actions"] == [
        "remove the stale device /dev/loop0 of volume 'shared' on peer (its export was removed by a forced detach)"]
    assert lab.host.discarded == ["/dev/loop0"] and lab.host.devices == {} and lab.connections() == []
    assert not lab.run(volume="shared", state="detached")["changed"]


def test_the_gone_host_back_attaching_again_first_removes_its_stale_device(lab):
    attach_on(lab, "peer", "v1")
    with pytest.raises(Conflict, match="not multiattach"):  # positive control of the next line
        lab.run(volume="v1", state="connected", connector=HERE)
    lab.run(volume="v1", state="detached", force=True, host="peer")
    assert lab.run(volume="v1", state="connected", connector=HERE)["changed"]  # a stale record is no connection
    lab.run(volume="v1", state="detached")
    result = attach_on(lab, "peer", "v1")
    assert lab.host.discarded == ["/dev/loop0"] and result["status"] == "attached"
    assert [c["status"] for c in lab.connections()] == ["attached"]


def test_a_stale_device_in_use_on_its_host_is_refused_until_unmounted(lab):
    attach_on(lab, "peer", "shared")
    lab.run(volume="shared", state="detached", force=True, host="peer")
    lab.host.hostname, lab.host.busy = "peer", ["/mnt/data"]
    with pytest.raises(Conflict, match=r"device /dev/loop0 is in use \(/mnt/data\); unmount it first"):
        lab.run(volume="shared", state="detached")
    assert lab.host.discarded == [] and lab.connections()[0]["status"] == "stale"
    lab.host.busy = []
    assert lab.run(volume="shared", state="detached")["changed"] and lab.connections() == []


def test_a_forced_detach_in_check_mode_shows_it_and_changes_nothing(lab):
    attach_on(lab, "peer", "shared")
    before = lab.store.all_records()
    result = lab.run(check_mode=True, volume="shared", state="detached", force=True, host="peer")
    assert result["changed"] and result["diff"]["before"]["status"] == "attached"
    assert result["diff"]["after"]["status"] == "stale"
    assert lab.store.all_records() == before and len(lab.driver.exports) == 1


def test_a_forced_detach_of_a_host_without_a_device_removes_its_connection(lab):
    lab.run(volume="shared", state="connected", connector=PEER)
    result = lab.run(volume="shared", state="detached", force=True, host="peer")
    assert result["changed"] and result["attachment"]["status"] == "detached"
    assert lab.connections() == [] and lab.driver.exports == {} and lab.volume("shared")["status"] == "available"


def test_a_stale_device_holds_no_writer_and_its_volume_is_deleted_only_with_force(lab):
    """After a forced detach of peer (shared is multiattach): multiattach can be turned off, and state absent says
    what the stale device needs instead of sending the user to a detach on a host that is gone."""
    attach_on(lab, "peer", "shared")
    lab.run(volume="shared", state="connected", connector={**PEER, "host": "third", "initiator": "iqn.test:third"})

    def plan(**params):
        resource = VolumeResource(RecordSet("lab", lab.store.all_records()), {"name": "shared", **params},
                                  host=lab.host)
        resource.prepare()
        return resource.plan()
    with pytest.raises(Conflict, match="connected to peer, third; disconnect all but one host first"):
        plan(multiattach=False)  # positive control: two live hosts
    with pytest.raises(Conflict, match=r"is connected to peer \(attached as /dev/loop0\), third; detach it first"):
        plan(state="absent")  # positive control: the usual refusal while peer is live
    lab.run(volume="shared", state="detached", force=True, host="peer")
    assert plan(multiattach=False).steps or plan(multiattach=False).changes  # third alone: allowed now
    lab.run(volume="shared", state="detached", connector={**PEER, "host": "third", "initiator": "iqn.test:third"})
    with pytest.raises(Conflict, match=r"has a stale device on peer .* or set force: true to delete the volume and "
                                       r"forget that device") as caught:
        plan(state="absent")
    assert caught.value.option == "force"
    assert [s.message for s in plan(state="absent", force=True).steps][-1].startswith("delete")


def test_a_forced_detach_is_refused_where_no_export_can_be_taken_back(lab, monkeypatch):
    """An rbd map or a local image path: nothing on the backend ends the gone host's access."""
    attach_on(lab, "peer", "v1")
    before = lab.store.all_records()
    monkeypatch.setattr(lab.driver, "export_expected", lambda connection: False)
    with pytest.raises(Conflict, match="has no export the backend can remove, so a forced detach cannot cut peer "
                                       "off") as caught:
        lab.run(volume="v1", state="detached", force=True, host="peer")
    assert caught.value.option == "force"
    assert lab.store.all_records() == before and len(lab.driver.exports) == 1  # nothing changed
    monkeypatch.undo()  # positive control: where the export can go, the same task runs
    assert lab.run(volume="v1", state="detached", force=True, host="peer")["changed"]


@pytest.mark.parametrize(("params", "option", "message"), [
    ({"force": True}, "force", "name the host whose connection to remove without reaching it, with host: NAME"),
    ({"host": "peer"}, "host", "host: only with force: true and state: detached"),
    ({"force": True, "host": "peer", "state": "attached"}, "force", "force: only with state detached"),
    ({"force": True, "host": "nobody"}, "host", r"no connection to 'nobody' \(its connections: here, peer\)"),
    ({"force": True, "host": "here"}, "host", "host: here is the host this task runs on; detach here without force"),
    ({"force": True, "host": "peer", "connector": PEER}, "connector", "connector: not with host"),
])
def test_bad_forced_detach_options_are_refused_naming_the_option_and_change_nothing(lab, params, option, message):
    attach_on(lab, "peer", "shared")
    lab.run(volume="shared")
    before = lab.store.all_records()
    params = {"state": "detached", **params}
    with pytest.raises(BlockstoreError, match=message) as caught:
        lab.run(volume="shared", **params)
    assert caught.value.option == option
    assert lab.store.all_records() == before and len(lab.driver.exports) == 2
