# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host side, pure parts: which way a connection is attached, what qemu is told, tgtadm parsing."""

from __future__ import annotations

import json
import logging
import os
import socket

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils import connectors
from ansible_collections.blockstore.storage.plugins.module_utils.connectors import brick, userspace
from ansible_collections.blockstore.storage.plugins.module_utils.drivers.tgt import Tgt
from ansible_collections.blockstore.storage.plugins.module_utils.errors import (
    Conflict,
    DriverError,
    InvalidParameter,
    MissingDependency,
)


@pytest.mark.parametrize(("protocol", "fmt", "method", "kernel", "expected"), [
    ("local", "raw", "auto", False, "loop"),
    ("local", "raw", "kernel", False, "loop"),
    ("local", "raw", "userspace", False, "userspace"),
    ("local", "qcow2", "auto", False, "userspace"),
    ("local", "qcow2", "userspace", True, "userspace"),
    ("iscsi", "raw", "auto", False, "userspace"),   # these test machines: no iscsi_tcp
    ("iscsi", "raw", "auto", True, "kernel"),
    ("iscsi", "raw", "userspace", True, "userspace"),
    ("iscsi", "raw", "kernel", True, "kernel"),
    ("rbd", "raw", "auto", False, "userspace"),
    ("rbd", "raw", "auto", True, "kernel"),
    ("nvmeof", "raw", "auto", False, "kernel"),     # no userspace path: os-brick decides
])
def test_choose(protocol, fmt, method, kernel, expected):
    assert connectors.choose(protocol, fmt, method, kernel) == expected


@pytest.mark.parametrize(("protocol", "fmt", "method", "kernel", "error", "words"), [
    ("local", "qcow2", "kernel", True, Conflict, "nbd"),
    ("iscsi", "raw", "kernel", False, Conflict, "iscsi_tcp"),
    ("rbd", "raw", "kernel", False, Conflict, "module rbd"),
    ("nvmeof", "raw", "kernel", False, Conflict, "module nvme_tcp"),
    ("nvmeof", "raw", "userspace", True, Conflict, "no userspace path"),
    ("local", "raw", "fast", True, InvalidParameter, "auto, kernel, userspace"),
])
def test_choose_refuses_clearly(protocol, fmt, method, kernel, error, words):
    with pytest.raises(error) as caught:
        connectors.choose(protocol, fmt, method, kernel)
    assert words in str(caught.value)
    assert caught.value.option == "method"


def test_iscsi_blockdev_keeps_the_chap_secret_out_of_the_command_line():
    data = {"target_portal": "127.0.0.1:3260", "target_iqn": "iqn.2010-10.org.blockstore:volume-x",
            "target_lun": 1, "auth_method": "CHAP", "auth_username": "bsabc", "auth_password": "s3cret-pass",
            "initiator_name": "iqn.1993-08.org.debian:01:host"}
    node, secret = userspace._blockdev("iscsi", data, "raw", read_only=False)
    assert secret == "s3cret-pass"
    assert "s3cret-pass" not in json.dumps(node)
    assert node["password-secret"] == "sec0" and node["user"] == "bsabc"
    assert node["initiator-name"] == "iqn.1993-08.org.debian:01:host"
    assert (node["portal"], node["target"], node["lun"]) == ("127.0.0.1:3260", data["target_iqn"], 1)


def test_rbd_blockdev_from_os_brick_shaped_info():
    data = {"name": "volumes/volume-1", "hosts": ["127.0.0.1"], "ports": ["3300"], "auth_username": "cinder",
            "keyring": "AQBkey==", "conf": "/etc/ceph/ceph.conf"}
    node, secret = userspace._blockdev("rbd", data, "raw", read_only=True)
    assert (node["pool"], node["image"], node["user"]) == ("volumes", "volume-1", "cinder")
    assert node["server"] == [{"host": "127.0.0.1", "port": "3300"}]
    assert node["read-only"] is True and node["key-secret"] == "sec0" and secret == "AQBkey=="


def test_rbd_key_from_the_keyring_file_of_the_driver(tmp_path):
    keyring = tmp_path / "ceph.client.cinder.keyring"
    keyring.write_text("[client.admin]\n    key = AQBadmin==\n[client.cinder]\n    key = AQBcinder==\n")
    conf = tmp_path / "ceph.conf"
    conf.write_text("[global]\nmon host = v2:127.0.0.1:3300\n")
    data = {"name": "rbd/volume-1", "hosts": ["127.0.0.1"], "ports": ["3300"], "auth_username": "cinder",
            "ceph_conf": str(conf), "keyring_path": str(keyring)}
    node, secret = userspace._blockdev("rbd", data, "raw", read_only=False)
    assert secret == "AQBcinder==" and node["conf"] == str(conf)
    assert "server" not in node  # the conf's v2 monitor address is used


def test_local_qcow2_blockdev():
    node, secret = userspace._blockdev("local", {"device_path": "/v/volume-1"}, "qcow2", read_only=False)
    assert node["driver"] == "qcow2" and node["file"] == {"driver": "file", "filename": "/v/volume-1"}
    assert secret is None


def test_host_properties_without_os_brick(monkeypatch, tmp_path):
    def missing(ip, multipath=False):
        raise MissingDependency("os-brick is needed", "os-brick")
    monkeypatch.setattr(brick, "properties", missing)
    monkeypatch.setattr(connectors, "INITIATOR_FILE", str(tmp_path / "absent"))
    props = connectors.host_properties()
    assert props["host"] == connectors.this_host()
    assert props["gathered_by"] == "blockstore"
    assert props["initiator"] == connectors.GENERATED_INITIATOR_PREFIX + props["host"]


def test_host_properties_reads_the_initiator_file(monkeypatch, tmp_path):
    def missing(ip, multipath=False):
        raise MissingDependency("no os-brick", "os-brick")
    monkeypatch.setattr(brick, "properties", missing)
    initiator_file = tmp_path / "initiatorname.iscsi"
    initiator_file.write_text("## comment\nInitiatorName=iqn.1993-08.org.debian:01:abc\n")
    monkeypatch.setattr(connectors, "INITIATOR_FILE", str(initiator_file))
    assert connectors.host_properties()["initiator"] == "iqn.1993-08.org.debian:01:abc"


def test_a_kernel_module_counts_when_loaded_built_in_or_loadable():
    dep = ["kernel/drivers/scsi/iscsi_tcp.ko.xz: kernel/drivers/scsi/libiscsi_tcp.ko.xz\n",
           "kernel/drivers/nvme/host/nvme-tcp.ko: kernel/drivers/nvme/host/nvme-fabrics.ko\n"]
    assert connectors.module_available("iscsi_tcp", set(), dep)    # loadable: iscsid loads it on first login
    assert connectors.module_available("nvme_tcp", set(), dep)     # file names use '-', module names '_'
    assert connectors.module_available("rbd", {"rbd"}, [])         # loaded
    assert not connectors.module_available("rbd", {"loop"}, dep)   # neither
    assert not connectors.module_available("iscsi_tcp", set(), ["kernel/drivers/scsi/libiscsi_tcp.ko: \n"])


def test_host_properties_give_the_nvme_host_nqn_without_os_brick(monkeypatch, tmp_path):
    def missing(ip, multipath=False):
        raise MissingDependency("no os-brick", "os-brick")
    monkeypatch.setattr(brick, "properties", missing)
    monkeypatch.setattr(connectors, "HOSTNQN_FILE", str(tmp_path / "absent"))
    assert "nqn" not in connectors.host_properties()  # no nvme-cli: no NQN made up
    hostnqn = tmp_path / "hostnqn"
    hostnqn.write_text("nqn.2014-08.org.nvmexpress:uuid:0f6e3c1c-6b5e-4d2e-9a44-2c8f1f0b7e11\n")
    monkeypatch.setattr(connectors, "HOSTNQN_FILE", str(hostnqn))
    assert connectors.host_properties()["nqn"] == "nqn.2014-08.org.nvmexpress:uuid:0f6e3c1c-6b5e-4d2e-9a44-2c8f1f0b7e11"


@pytest.mark.parametrize("multipath", [True, False])
def test_the_kernel_connector_builds_os_brick_s_connector_as_asked(multipath):
    pytest.importorskip("os_brick")
    initiator = brick._initiator("ISCSI", multipath)  # os-brick's own factory, no system change
    assert initiator.use_multipath is multipath
    assert brick._initiator("NVMEOF", multipath).use_multipath is multipath
    from oslo_config import cfg
    assert cfg.CONF.os_brick.lock_path  # os_brick.setup ran with a lock_path: external locks work


TGT_SHOW = """Target 1: iqn.2010-10.org.blockstore:volume-a
    System information:
        Driver: iscsi
        State: ready
    I_T nexus information:
        I_T nexus: 3
            Initiator: iqn.1994-05.com.example:a alias: none
            Connection: 0
                IP Address: 127.0.0.1
    LUN information:
        LUN: 0
            Type: controller
            Backing store path: None
        LUN: 1
            Type: disk
            Backing store path: /srv/volumes/volume-a
            Backing store flags:
    Account information:
        bs0001
        bs0002
    ACL information:
        iqn.1994-05.com.example:a
        iqn.1994-05.com.example:b
Target 3: iqn.2010-10.org.blockstore:volume-b
    System information:
        Driver: iscsi
    LUN information:
        LUN: 0
            Backing store path: None
    Account information:
    ACL information:
"""


def test_tgt_show_is_parsed(monkeypatch):
    tgt = Tgt(7)
    monkeypatch.setattr(tgt, "_tgtadm", lambda *args, **kw: type("P", (), {"stdout": TGT_SHOW})())
    targets = tgt.targets()
    assert targets["iqn.2010-10.org.blockstore:volume-a"] == {
        "tid": 1, "acl": ["iqn.1994-05.com.example:a", "iqn.1994-05.com.example:b"],
        "accounts": ["bs0001", "bs0002"], "backing": ["/srv/volumes/volume-a"]}
    assert targets["iqn.2010-10.org.blockstore:volume-b"] == {"tid": 3, "acl": [], "accounts": [], "backing": []}


def test_a_tgtd_out_of_reach_is_explained_with_the_host_the_export_ran_on(monkeypatch, tmp_path):
    # tgtadm's own words when no tgtd listens on the control port (the export ran on a consumer host).
    fake = tmp_path / "tgtadm"
    fake.write_text("#!/bin/sh\necho 'tgtadm: failed to send request hdr to tgt daemon, Transport endpoint is not "
                    "connected' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    with pytest.raises(DriverError) as caught:
        Tgt(7).check()
    message = str(caught.value)
    assert "Transport endpoint is not connected" in message
    assert f"on this host ({socket.gethostname()})" in message
    assert "name the host that serves the backend as the backend's host (backend.host)" in message
    assert "tgtd -C 7 --iscsi portal=IP:PORT" in message


@pytest.mark.parametrize(("stale", "order"), [(False, ["loop", "daemon"]), (True, ["daemon", "loop"])])
def test_a_stale_userspace_device_stops_its_daemon_before_freeing_the_loop_device(monkeypatch, stale, order):
    # A dead export: the loop device's I/O waits on the daemon until that is gone (its FUSE connection aborted),
    # so freeing the loop device first could wait for ever; a live one is freed first so its data is flushed.
    done = []
    monkeypatch.setattr(userspace.qsd, "stop", lambda daemon: done.append("daemon"))
    monkeypatch.setattr(userspace.loop, "_losetup", lambda *args: done.append("loop"))  # only --detach here
    # Bound to its export until the daemon goes: then the kernel shows the lazily unmounted file as "/".
    monkeypatch.setattr(userspace.loop, "backing_file", lambda path: "/" if "daemon" in done else "/run/x/export")
    device = {"path": "/dev/loop3", "method": "userspace", "backing_file": "/run/x/export", "daemon": {"dir": "/run/x"}}
    connector = userspace.UserspaceConnector()
    (connector.discard_volume if stale else connector.disconnect_volume)(device, {})
    assert done == order


def test_a_stale_userspace_device_bound_to_another_file_is_left_alone(monkeypatch):
    done = []
    monkeypatch.setattr(userspace.qsd, "stop", lambda daemon: done.append("daemon"))
    monkeypatch.setattr(userspace.loop, "_losetup", lambda *args: done.append("loop"))
    monkeypatch.setattr(userspace.loop, "backing_file", lambda path: "/srv/other.img")  # reused since
    device = {"path": "/dev/loop3", "method": "userspace", "backing_file": "/run/x/export", "daemon": {"dir": "/run/x"}}
    userspace.UserspaceConnector().discard_volume(device, {})
    assert done == ["daemon"]


def test_a_failed_kernel_connect_tells_what_os_brick_logged_without_the_chap_secret():
    pytest.importorskip("os_brick")
    data = {"target_portal": "192.0.2.1:3260", "target_iqn": "iqn.2010-10.org.blockstore:volume-x", "target_lun": 0,
            "auth_method": "CHAP", "auth_username": "bsuser", "auth_password": "s3cret-pass"}
    errors = brick._Errors(data)
    logger = logging.getLogger("os_brick.initiator.connectors.iscsi")
    logger.addHandler(errors)
    try:
        logger.error("Could not login to %s with password %s", data["target_portal"], "s3cret-pass")
        logger.warning("a warning is not a reason")
    finally:
        logger.removeHandler(errors)
    assert errors.told() == " (os-brick logged: Could not login to 192.0.2.1:3260 with password ********)"
    assert brick._Errors({}).told() == ""  # nothing logged: nothing added


def test_kernel_device_size_is_what_the_host_sees(tmp_path):
    # An attachment plans a grow only when the device looks smaller than the volume: with no size (None) an
    # extend on the backend never reached the host (seen in the guest lab). Any block device of this host will do.
    from ansible_collections.blockstore.storage.plugins.module_utils.connectors.kernel import KernelConnector
    name = sorted(os.listdir("/sys/class/block"))[0]
    link = tmp_path / "by-id-link"
    link.symlink_to(f"/dev/{name}")  # os-brick may hand back a symlink (/dev/disk/by-path/..., /dev/mapper/...)
    with open(f"/sys/class/block/{name}/size", encoding="ascii") as handle:
        expected = int(handle.read()) * 512
    assert KernelConnector().size({"path": str(link)}) == expected
    assert KernelConnector().size({"path": f"/dev/{name}"}) == expected
