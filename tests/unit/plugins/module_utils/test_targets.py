# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kernel targets' pure logic (targets/): portals, names, the connection info os-brick takes, nvmet's port
choice, and the file driver's refusals before anything is exported. The exports themselves need a kernel with
LIO and nvmet: they run in the guest lab (tests/integration/targets/storage_guest, phase kernel)."""

from __future__ import annotations

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils import targets
from ansible_collections.blockstore.storage.plugins.module_utils.drivers import build_driver
from ansible_collections.blockstore.storage.plugins.module_utils.errors import InvalidParameter
from ansible_collections.blockstore.storage.plugins.module_utils.objects import AVAILABLE, Connection, Volume
from ansible_collections.blockstore.storage.plugins.module_utils.targets.nvmet import free_port_id, port_for

CONN = "00000000-0000-4000-8000-000000000001"


def test_portals_list_the_main_address_first_then_the_secondary_ones_once():
    conf = {"target_ip_address": "198.51.100.10", "target_secondary_ip_addresses": " 198.51.100.20,198.51.100.10,",
            "target_port": 0}
    assert targets.portals(conf, "lio") == [("198.51.100.10", 3260), ("198.51.100.20", 3260)]
    assert targets.portals(conf, "nvmet") == [("198.51.100.10", 4420), ("198.51.100.20", 4420)]
    assert targets.portals(dict(conf, target_port=3261), "lio")[1] == ("198.51.100.20", 3261)


@pytest.mark.parametrize("option, value", [("target_ip_address", "198.51.100.10 198.51.100.20"),
                                           ("target_secondary_ip_addresses", "[fd00::1]"),
                                           ("target_secondary_ip_addresses", "198.51.100.0/24")])
def test_an_address_that_is_not_one_is_refused_naming_its_option(option, value):
    conf = {"target_ip_address": "198.51.100.10", option: value}
    with pytest.raises(InvalidParameter, match=f"^backend.{option}: .* is not an IP address") as caught:
        targets.portals(conf, "lio")
    assert caught.value.option == f"backend.{option}"
    # The file driver refuses it when built, before any export; the same backend with a good address builds.
    backend = {"name": "san", "driver": "file", "path": "/nonexistent/v", "target": "nvmet", option: value}
    with pytest.raises(InvalidParameter, match=f"^backend.{option}: "):
        build_driver(backend)
    assert build_driver(dict(backend, **{option: "198.51.100.30"}))


def test_each_connection_has_its_own_target_name_and_an_unsafe_id_is_named_by_its_digest():
    conf = {"target_prefix": ""}
    assert targets.target_name(conf, "lio", "v1", CONN) == f"iqn.2010-10.org.blockstore:volume-v1:{CONN}"
    assert targets.target_name(conf, "nvmet", "v1", CONN) == f"nqn.2010-10.org.blockstore:volume-v1:{CONN}"
    assert targets.target_name({"target_prefix": "iqn.2010-10.org.openstack:"}, "lio", "v1", CONN) \
        .startswith("iqn.2010-10.org.openstack:volume-v1:")
    odd = targets.target_name(conf, "lio", "v1", "Host A/1")
    assert odd.rpartition(":")[2].startswith("c") and " " not in odd
    assert odd != targets.target_name(conf, "lio", "v1", "Host A/2")


def test_chap_user_names_its_connection_and_other_accounts_name_none():
    assert targets.connection_of_user(targets.chap_user(CONN)) == CONN
    assert targets.connection_of_user("admin") is None and targets.connection_of_user(None) is None


def test_iscsi_data_is_what_os_brick_takes_with_every_portal_for_multipath():
    one = targets.connection_data("lio", "iqn.x:t", {"target_ip_address": "198.51.100.10"}, "iqn.h", "u", "p")
    assert one["target_portal"] == "198.51.100.10:3260" and one["target_iqn"] == "iqn.x:t"
    assert one["target_lun"] == 0 and (one["auth_method"], one["auth_username"], one["auth_password"]) == \
        ("CHAP", "u", "p")
    assert "target_portals" not in one  # one portal: os-brick's single-path form
    two = targets.connection_data("lio", "iqn.x:t", {"target_ip_address": "198.51.100.10",
                                                     "target_secondary_ip_addresses": "198.51.100.20"}, "iqn.h")
    assert two["target_portals"] == ["198.51.100.10:3260", "198.51.100.20:3260"]
    assert two["target_iqns"] == ["iqn.x:t"] * 2 and two["target_luns"] == [0, 0]


def test_nvmeof_data_is_what_os_brick_takes():
    data = targets.connection_data("nvmet", "nqn.x:t", {"target_ip_address": "198.51.100.10",
                                                        "target_secondary_ip_addresses": "198.51.100.20"},
                                   "nqn.2014-08.org.nvmexpress:uuid:h")
    assert data == {"target_nqn": "nqn.x:t", "ns_id": "1", "host_nqn": "nqn.2014-08.org.nvmexpress:uuid:h",
                    "portals": [["198.51.100.10", "4420", "tcp"], ["198.51.100.20", "4420", "tcp"]]}


def test_nvmet_shares_a_port_on_the_same_address_and_picks_a_free_id_otherwise():
    ports = {"1": {"addr_trtype": "tcp", "addr_traddr": "198.51.100.10", "addr_trsvcid": "4420"},
             "3": {"addr_trtype": "rdma", "addr_traddr": "198.51.100.20", "addr_trsvcid": "4420"}}
    assert port_for(ports, "198.51.100.10", 4420) == "1"
    assert port_for(ports, "198.51.100.20", 4420) is None  # same address, other transport
    assert free_port_id(ports) == "2" and free_port_id({}) == "1"


@pytest.fixture(name="volume")
def fixture_volume(tmp_path):
    def make(**options):
        driver = build_driver({"name": "san", "driver": "file", "path": str(tmp_path / "v"), **options})
        driver.check_setup()
        volume = Volume(id="3f0c2a55-0d7e-4b55-9f43-0a6d3c1e9b10", name="v", backend="san", size=1,
                        status=AVAILABLE)
        volume.driver_data = driver.create_volume(volume)
        return driver, volume
    return make


@pytest.mark.parametrize("target", ["lio", "nvmet"])
def test_file_driver_refuses_a_kernel_target_for_qcow2(tmp_path, target):
    with pytest.raises(InvalidParameter, match=f"^backend.target: {target} exports raw files only"):
        build_driver({"name": "san", "driver": "file", "path": str(tmp_path), "format": "qcow2", "target": target})
    assert build_driver({"name": "san", "driver": "file", "path": str(tmp_path), "target": target})  # raw: taken


@pytest.mark.parametrize("target, key", [("lio", "initiator"), ("nvmet", "nqn")])
def test_a_kernel_export_without_the_hosts_name_is_refused_naming_it(volume, target, key):
    driver, vol = volume(target=target)
    conn = Connection(id=CONN, backend="san", volume_id=vol.id, host="app1", connector={"host": "app1"})
    with pytest.raises(InvalidParameter, match=f"^connector.{key}: a {target} export needs") as caught:
        driver.initialize_connection(vol, conn)
    assert caught.value.option == f"connector.{key}"
    # Positive control: local export of the same volume works without either name.
    local, vol2 = volume()
    assert local.initialize_connection(vol2, conn)["driver_volume_type"] == "local"


def test_the_drift_view_lists_kernel_exports_of_this_backends_volumes(volume):
    driver, vol = volume(target="nvmet")
    path = driver.volume_path(vol)
    rows = [(f"nqn.2010-10.org.blockstore:volume-{vol.id}:{CONN}", path, "nqn.h"),
            ("nqn.other:volume-x:1", "/elsewhere/volume-x", "nqn.h")]

    class Listed:  # the rows nvmet's configfs listing gives (Nvmet.exports)
        @staticmethod
        def exports():
            return rows
    driver.kernel_target = Listed
    assert driver.list_exports() == [{"volume_id": vol.id, "connection_id": CONN,
                                      "export": f"nvmet target {rows[0][0]}"}]
