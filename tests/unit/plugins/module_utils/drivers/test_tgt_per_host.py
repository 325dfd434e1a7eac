# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Each host logs in with its own CHAP account only (issue 13, item 4), on a real tgtd.

tgt binds accounts to targets: when one target served every host of a volume, host A's initiator logged in
with host B's account. The file driver now makes one target per connection over the same image. Logins are
made with libiscsi's iscsi-inq (the library of qemu's iscsi driver, which the userspace connector uses); data
goes through qemu-io with the iscsi blockdev the userspace connector gives qemu-storage-daemon.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils.drivers import build_driver
from ansible_collections.blockstore.storage.plugins.module_utils.drivers.tgt import Tgt
from ansible_collections.blockstore.storage.plugins.module_utils.objects import AVAILABLE, Connection, Volume

needs_tgtd = pytest.mark.skipif(os.geteuid() != 0 or not all(shutil.which(t) for t in ("tgtd", "iscsi-inq", "qemu-io")),
                                reason="needs root, tgt (tgtd, tgtadm), libiscsi-bin (iscsi-inq) and qemu-utils")
HOSTS = ("app1", "app2")


def _initiator(host: str) -> str:
    return f"iqn.2005-03.org.blockstore.test:{host}"


@pytest.fixture(name="exported")
def fixture_exported(tgtd, tmp_path):
    """A 1 GiB raw volume on a file backend exported over tgtd, and a connection maker."""
    driver = build_driver({"name": "san", "driver": "file", "path": str(tmp_path / "volumes"), "target": "iscsi",
                           "iscsi_ip_address": "127.0.0.1", "iscsi_port": int(tgtd.portal.split(":")[1]),
                           "tgt_control_port": tgtd.control})
    driver.check_setup()
    volume = Volume(id="3f0c2a55-0d7e-4b55-9f43-0a6d3c1e9b10", name="shared", backend="san", size=1,
                    status=AVAILABLE, multiattach=True)
    volume.driver_data = driver.create_volume(volume)

    def connect(host: str, info: dict | None = None, conn_id: str | None = None) -> Connection:
        conn = Connection(id=conn_id or f"00000000-0000-4000-8000-{HOSTS.index(host) + 1:012d}", backend="san",
                          volume_id=volume.id, host=host, connector={"host": host, "initiator": _initiator(host)},
                          connection_info=info or {})
        conn.connection_info = driver.initialize_connection(volume, conn)
        return conn
    return driver, volume, connect


def _login(tgtd, initiator: str, iqn: str, data: dict) -> str:
    """iscsi-inq's answer: '' when it logged in, else libiscsi's reason."""
    env = dict(os.environ, LIBISCSI_CHAP_USERNAME=data["auth_username"], LIBISCSI_CHAP_PASSWORD=data["auth_password"])
    proc = subprocess.run(["iscsi-inq", "-i", initiator, f"iscsi://{tgtd.portal}/{iqn}/1"], env=env,
                          capture_output=True, text=True, check=False)
    return "" if proc.returncode == 0 else (proc.stderr + proc.stdout).strip() or f"rc {proc.returncode}"


def _qemu_io(tgtd, conn: Connection, command: str) -> subprocess.CompletedProcess:
    data = conn.connection_info["data"]
    node = {"driver": "iscsi", "transport": "tcp", "portal": tgtd.portal, "target": data["target_iqn"], "lun": 1,
            "initiator-name": conn.connector["initiator"], "user": data["auth_username"], "password-secret": "pw"}
    return subprocess.run(["qemu-io", "--object", f"secret,id=pw,data={data['auth_password']}", "--image-opts",
                           ",".join(f"{k}={v}" for k, v in node.items()), "-c", command],
                          capture_output=True, text=True, check=False)


@needs_tgtd
def test_each_host_logs_in_to_its_own_target_with_its_own_account_only(tgtd, exported):
    _driver, volume, connect = exported
    conns = {host: connect(host) for host in HOSTS}
    data = {host: conns[host].connection_info["data"] for host in HOSTS}
    assert data["app1"]["target_iqn"] != data["app2"]["target_iqn"]
    assert {d["target_iqn"] for d in data.values()} == {
        f"iqn.2010-10.org.blockstore:volume-{volume.id}:{conns[h].id}" for h in HOSTS}
    targets = Tgt(tgtd.control).targets()
    for host in HOSTS:
        own = targets[data[host]["target_iqn"]]
        assert (own["acl"], own["accounts"]) == ([_initiator(host)], [data[host]["auth_username"]])
    for host, other in (HOSTS, HOSTS[::-1]):
        me = _initiator(host)
        # Positive control: the host, its own target, its own account.
        assert _login(tgtd, me, data[host]["target_iqn"], data[host]) == ""
        # The other host's account on its own target: CHAP refuses it.
        assert "Authentication failure" in _login(tgtd, me, data[host]["target_iqn"], data[other])
        # The other host's target, with either account: the ACL does not know this initiator.
        assert "Target not found" in _login(tgtd, me, data[other]["target_iqn"], data[host])
        assert "Target not found" in _login(tgtd, me, data[other]["target_iqn"], data[other])


@needs_tgtd
def test_data_written_through_one_hosts_target_is_read_through_the_others(tgtd, exported):
    _driver, _volume, connect = exported
    one, two = connect("app1"), connect("app2")
    written = _qemu_io(tgtd, one, "write -P 0x5a 4096 64k")
    assert written.returncode == 0 and "wrote 65536/65536" in written.stdout, written.stderr
    read = _qemu_io(tgtd, two, "read -P 0x5a 4096 64k")
    assert read.returncode == 0 and "Pattern verification failed" not in read.stdout, read.stdout
    # Control: a pattern that was not written does not verify, so the read above did compare.
    assert "Pattern verification failed" in _qemu_io(tgtd, two, "read -P 0x33 4096 64k").stdout


@needs_tgtd
def test_removing_one_hosts_connection_removes_its_target_and_account_only_and_the_last_leaves_nothing(
        tgtd, exported):
    driver, volume, connect = exported
    one, two = connect("app1"), connect("app2")
    tgt = Tgt(tgtd.control)
    driver.terminate_connection(volume, one)
    assert list(tgt.targets()) == [two.connection_info["data"]["target_iqn"]]
    assert tgt.accounts() == [two.connection_info["data"]["auth_username"]]
    assert _login(tgtd, _initiator("app2"), two.connection_info["data"]["target_iqn"],
                  two.connection_info["data"]) == ""
    assert "Target not found" in _login(tgtd, _initiator("app1"), one.connection_info["data"]["target_iqn"],
                                        one.connection_info["data"])
    driver.terminate_connection(volume, two)
    assert (tgt.targets(), tgt.accounts()) == ({}, [])
    assert "Target" not in tgtd.tgtadm("--mode", "target", "--op", "show")


@needs_tgtd
def test_a_shared_target_of_an_older_version_keeps_serving_and_its_connections_leave_it_one_by_one(tgtd, exported):
    driver, volume, connect = exported
    tgt = Tgt(tgtd.control)
    shared = f"iqn.2010-10.org.blockstore:volume-{volume.id}"
    # The export an older version made: one target, both hosts in its ACL, both accounts bound to it.
    old = {}
    target = tgt.ensure_target(shared, driver.volume_path(volume))
    for number, host in enumerate(HOSTS, 1):
        conn_id = f"00000000-0000-4000-8000-{number:012d}"
        data = {"target_iqn": shared, "target_lun": 1, "auth_method": "CHAP", "auth_username": f"bs{conn_id}"
                .replace("-", ""), "auth_password": f"OldSecret{number}xyz"}
        tgt.allow(target, _initiator(host), data["auth_username"], data["auth_password"])
        old[host] = Connection(id=conn_id, backend="san", volume_id=volume.id, host=host,
                               connector={"host": host, "initiator": _initiator(host)},
                               connection_info={"driver_volume_type": "iscsi", "data": data})
    third = connect("app3", conn_id="00000000-0000-4000-8000-000000000003")
    assert third.connection_info["data"]["target_iqn"] == f"{shared}:{third.id}"
    assert _login(tgtd, _initiator("app3"), f"{shared}:{third.id}", third.connection_info["data"]) == ""
    for host in HOSTS:  # the old connections still log in where they did
        assert _login(tgtd, _initiator(host), shared, old[host].connection_info["data"]) == ""

    driver.terminate_connection(volume, old["app1"])
    assert tgt.targets()[shared]["acl"] == [_initiator("app2")]
    assert _login(tgtd, _initiator("app2"), shared, old["app2"].connection_info["data"]) == ""

    # Exported again (after an error), app2's connection moves to a target of its own, same password.
    moved = connect("app2", info=old["app2"].connection_info, conn_id=old["app2"].id)
    assert moved.connection_info["data"]["target_iqn"] == f"{shared}:{old['app2'].id}"
    assert moved.connection_info["data"]["auth_password"] == "OldSecret2xyz"
    assert shared not in tgt.targets()
    assert _login(tgtd, _initiator("app2"), f"{shared}:{old['app2'].id}", moved.connection_info["data"]) == ""

    driver.terminate_connection(volume, moved)
    driver.terminate_connection(volume, third)
    assert (tgt.targets(), tgt.accounts()) == ({}, [])


@needs_tgtd
def test_the_export_a_killed_connect_left_is_made_again_with_a_password_that_logs_in(tgtd, exported):
    _driver, _volume, connect = exported
    connect("app1")  # its result never reached the store: nobody knows this password
    again = connect("app1")  # the next task, under the same connection id, without connection_info
    assert _login(tgtd, _initiator("app1"), again.connection_info["data"]["target_iqn"],
                  again.connection_info["data"]) == ""


@needs_tgtd
def test_an_extended_volume_shows_its_new_size_through_every_hosts_target(tgtd, exported):
    driver, volume, connect = exported
    conns = [connect(host) for host in HOSTS]
    volume.size = 2
    driver.extend_volume(volume, 2)
    for conn in conns:
        info = _qemu_io(tgtd, conn, "length")
        assert info.returncode == 0 and info.stdout.strip() == "2 GiB", (info.stdout, info.stderr)


def test_a_connection_id_that_is_no_iscsi_name_is_named_by_its_digest(tmp_path):
    driver = build_driver({"name": "san", "driver": "file", "path": str(tmp_path), "target": "iscsi"})
    volume = Volume(id="v1", name="v", backend="san", size=1)
    names = {cid: driver._iqn(volume, Connection(id=cid, backend="san", volume_id="v1", host="h"))
             for cid in ("conn-1", "Conn_1", "conn_1")}
    assert names["conn-1"] == "iqn.2010-10.org.blockstore:volume-v1:conn-1"
    assert len(set(names.values())) == 3
    assert all(n.startswith("iqn.2010-10.org.blockstore:volume-v1:c") for n in names.values())
    assert all(n == n.lower() and "_" not in n for n in names.values())
