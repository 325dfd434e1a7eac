# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rbd driver against a real Ceph cluster (tests/utils/ceph.sh, started by scripts/test.sh).

The driver runs in .venv-rbd's Python (Debian's python3.11, the only one the Ceph
bindings load in) through tests/utils/rbd_driver_run.py; what it left in the pool is
read back with the rbd command-line tool.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess

import ansible_collections.blockstore.storage as collection
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))))
RUNNER = os.path.join(REPO, "tests", "utils", "rbd_driver_run.py")
RBD_PYTHON = os.environ.get("BLOCKSTORE_TEST_RBD_PYTHON", os.path.join(REPO, ".venv-rbd", "bin", "python"))
CONF = os.environ.get("BLOCKSTORE_TEST_CEPH_CONF")
KEYRING = os.environ.get("BLOCKSTORE_TEST_CEPH_KEYRING")
USER = os.environ.get("BLOCKSTORE_TEST_CEPH_USER", "cinder")
POOL = os.environ.get("BLOCKSTORE_TEST_CEPH_POOL", "rbd")
MADE: list = []  # ids made by the current test
# The directory holding ansible_collections/, for the runner's imports.
COLLECTIONS_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(next(iter(collection.__path__)))))

pytestmark = [
    pytest.mark.skipif(not CONF, reason="no test cluster: run under scripts/test.sh or eval "
                                        "\"$(bash tests/utils/ceph.sh env)\" after tests/utils/ceph.sh start"),
    pytest.mark.skipif(not os.access(RBD_PYTHON, os.X_OK),
                       reason=f"no rbd module interpreter {RBD_PYTHON}; run scripts/setup-ceph.sh"),
]


def backend(**overrides) -> dict:
    return {"rbd_pool": POOL, "rbd_ceph_conf": CONF, "rbd_user": USER, "rbd_keyring_conf": KEYRING,
            "rados_connect_timeout": 20, **overrides}


def run(ops: list, **overrides) -> tuple[dict, list]:
    """Run driver operations; every one must succeed unless the caller looks at errors itself."""
    proc = subprocess.run([RBD_PYTHON, RUNNER], input=json.dumps({"backend": backend(**overrides), "ops": ops}),
                          capture_output=True, text=True, check=False, timeout=600,
                          env={**os.environ, "PYTHONPATH": COLLECTIONS_ROOT})
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    MADE.extend(out["ids"].values())
    return out["ids"], out["results"]


def ok(ops: list, **overrides) -> tuple[dict, list]:
    ids, results = run(ops, **overrides)
    failures = [(op, r) for op, r in zip(ops, results) if "error" in r]
    assert not failures, failures
    return ids, [r["ok"] for r in results]


def rbd_cli(*args: str) -> str:
    proc = subprocess.run(["rbd", "--conf", CONF, "--id", USER, "--keyring", KEYRING, *args],
                          capture_output=True, text=True, check=True, timeout=120)
    return proc.stdout


def leftovers(ids: dict) -> list[dict]:
    """Images and snapshots in the pool that belong to these ids (hidden ones included)."""
    listing = json.loads(rbd_cli("ls", "-l", "--format", "json", POOL) or "[]")
    return [e for e in listing if any(i in e["image"] or i in e.get("snapshot", "") for i in ids.values())]


def info(ids: dict, label: str) -> dict:
    return json.loads(rbd_cli("info", "--format", "json", f"{POOL}/volume-{ids[label]}"))


def snaps(ids: dict, label: str) -> list[dict]:
    return json.loads(rbd_cli("snap", "ls", "--format", "json", f"{POOL}/volume-{ids[label]}"))


def cleanup(ids: list) -> None:
    """Remove what a test left in the pool, so later tests see it clean."""
    if ids:
        run([["purge", ids]])


@pytest.fixture(autouse=True)
def _clean_pool():
    """Whatever a test's runs made and left in the pool (a failed test) is removed afterwards."""
    MADE.clear()
    yield
    made = list(MADE)
    cleanup(made)


def test_volume_data_extend_snapshot_and_revert():
    ops = [["check"], ["volume", "a", 1], ["write", "a", 0, 0x11], ["snapshot", "s", "a"], ["write", "a", 0, 0x22],
           ["extend", "a", 2], ["read", "a", 0, 65536], ["revert", "a", "s"], ["read", "a", 0, 65536],
           ["exists", "a"], ["ids"]]
    ids, results = ok(ops)
    assert results[6] == [0x22] and results[8] == [0x11]
    assert results[9] is True and ids["a"] in results[10]
    assert info(ids, "a")["size"] == 2 * 1024 ** 3  # revert keeps the extended size
    assert [s["name"] for s in snaps(ids, "a")] == [f"snapshot-{ids['s']}"]
    ids = ok([*ops, ["delete_snapshot", "s"], ["delete_volume", "a"]])[0]
    assert leftovers(ids) == []


def image_meta(ids: dict, label: str) -> dict:
    """The image's metadata as `rbd image-meta list` shows it (librbd's QoS settings are conf_rbd_qos_*)."""
    return json.loads(rbd_cli("image-meta", "list", "--format", "json", f"{POOL}/volume-{ids[label]}") or "{}")


def test_qos_is_set_as_librbd_image_settings_and_changes_in_place():
    ids, results = ok([["volume", "a", 1, {"total_iops_sec": 100, "write_bytes_sec": 1048576}], ["clone", "b", "a"],
                       ["volume", "c", 1], ["connect", "a"], ["connect", "c"]])
    assert image_meta(ids, "a") == {"conf_rbd_qos_iops_limit": "100", "conf_rbd_qos_write_bps_limit": "1048576"}
    # krbd ignores the image's metadata: the limits travel in the connection info, so a kernel attach is refused.
    assert results[3]["data"]["qos_specs"] == {"total_iops_sec": 100, "write_bytes_sec": 1048576}
    assert "qos_specs" not in results[4]["data"]  # positive control: a volume without qos
    # A clone without qos does not keep what it would inherit from its parent; a plain volume has none.
    assert image_meta(ids, "b") == {} and image_meta(ids, "c") == {}
    ids = ok([["volume", "d", 1, {"total_iops_sec": 100}], ["change_qos", "d", {"read_iops_sec": 5}],
              ["clone", "e", "d", None, {"total_bytes_sec": 4096}]])[0]
    assert image_meta(ids, "d") == {"conf_rbd_qos_read_iops_limit": "5"}
    assert image_meta(ids, "e") == {"conf_rbd_qos_bps_limit": "4096"}
    ok([["volume", "f", 1, {"total_iops_sec": 100}], ["change_qos", "f", {}]])
    assert image_meta(*ok([["volume", "g", 1, {"read_bytes_sec": 7}], ["change_qos", "g", {}]])[:1], "g") == {}


def test_volume_from_snapshot_is_a_clone_and_the_snapshot_is_protected():
    ids, results = ok([["volume", "a", 1], ["write", "a", 0, 0x11], ["snapshot", "s", "a"], ["write", "a", 0, 0x22],
                       ["from_snapshot", "b", "s", 2], ["read", "b", 0, 65536], ["depth", "b"]])
    assert results[5] == [0x11] and results[6] == 1
    parent = info(ids, "b")["parent"]
    assert parent["pool"] == POOL and parent["image"] == f"volume-{ids['a']}"
    assert parent["snapshot"] == f"snapshot-{ids['s']}"
    assert info(ids, "b")["size"] == 2 * 1024 ** 3
    assert [s["protected"] for s in snaps(ids, "a")] == ["true"]


def test_flatten_volume_from_snapshot_option():
    ids, results = ok([
        ["volume", "a", 1], ["write", "a", 0, 0x11], ["snapshot", "s", "a"],
        ["from_snapshot", "b", "s"], ["read", "b", 0, 65536], ["depth", "b"],
    ], rbd_flatten_volume_from_snapshot=True)
    assert results[4] == [0x11] and results[5] == 0
    assert "parent" not in info(ids, "b")
    assert [s["name"] for s in snaps(ids, "a")] == [f"snapshot-{ids['s']}"]


@pytest.mark.parametrize("max_depth", [1, 2])
def test_clone_depth_limit_flattens(max_depth):
    chain = ["c1", "c2", "c3"]
    ops = [["volume", "a", 1], ["write", "a", 0, 0x33]]
    ops += [["clone", label, source] for label, source in zip(chain, ["a", *chain])]
    ops += [["depth", label] for label in chain] + [["read", chain[-1], 0, 65536]]
    ids, results = ok(ops, rbd_max_clone_depth=max_depth)
    depths = results[-4:-1]
    # A chain of parents never passes the limit: the clone that would is flattened.
    assert depths == ([1, 0, 1] if max_depth == 1 else [1, 2, 0])
    flattened = chain[max_depth]
    assert "parent" not in info(ids, flattened)
    assert results[-1] == [0x33]
    # The flattened clone's private base snapshot is gone from its source.
    source = "a" if flattened == "c1" else chain[chain.index(flattened) - 1]
    assert f"clone-base-{ids[flattened]}" not in [s["name"] for s in snaps(ids, source)]


def test_clone_depth_zero_makes_full_copies():
    ids, results = ok([
        ["volume", "a", 1], ["write", "a", 0, 0x44], ["snapshot", "s", "a"],
        ["clone", "c", "a"], ["from_snapshot", "b", "s"], ["depth", "c"], ["depth", "b"], ["read", "c", 0, 65536],
    ], rbd_max_clone_depth=0)
    assert results[5:] == [0, 0, [0x44]]
    assert [s["name"] for s in snaps(ids, "a")] == [f"snapshot-{ids['s']}"]
    assert [s["protected"] for s in snaps(ids, "a")] == ["false"]


def test_deleting_a_snapshot_flattens_the_volumes_made_from_it():
    ids, results = ok([
        ["volume", "a", 1], ["write", "a", 0, 0x55], ["snapshot", "s", "a"], ["write", "a", 0, 0x66],
        ["from_snapshot", "b", "s"], ["from_snapshot", "b2", "s"], ["delete_snapshot", "s"],
        ["read", "b", 0, 65536], ["read", "b2", 0, 65536], ["depth", "b"],
    ])
    assert results[7:] == [[0x55], [0x55], 0]
    assert snaps(ids, "a") == []


def test_an_interrupted_clone_leaves_nothing_after_its_delete():
    ids = ok([["volume", "a", 1], ["clone", "c", "a"], ["drop_image", "c"], ["delete_volume", "c"]])[0]
    assert snaps(ids, "a") == []  # the private clone-base snapshot went with the failed clone


def test_a_clone_cinder_made_takes_its_clone_snap_with_it():
    """Volumes imported from cinderlib: Cinder's RBD driver cloned them through a protected
    `volume-<clone>.clone_snap` snapshot of the source, which must go with the clone."""
    ids, results = ok([["volume", "a", 1], ["write", "a", 0, 0x11], ["cinder_clone", "c", "a"],
                       ["read", "c", 0, 65536], ["delete_volume", "c"], ["read", "a", 0, 65536]])
    assert results[3] == [0x11] and results[5] == [0x11]
    assert snaps(ids, "a") == []
    # The source deleted first is hidden while the clone uses it; the clone's delete takes both.
    ids = ok([["volume", "a", 1], ["cinder_clone", "c", "a"], ["delete_volume", "a"], ["delete_volume", "c"]])[0]
    assert leftovers(ids) == []


def test_drift_lists_a_clone_snap_no_clone_uses_any_more():
    ids, results = ok([["volume", "a", 1], ["cinder_clone", "c", "a"], ["leftovers"], ["drop_image", "c"],
                       ["leftovers"]])
    # Positive control: while the clone exists its clone_snap is no leftover.
    assert not [x for x in results[2] if ids["a"] in x]
    assert [x for x in results[4] if ids["a"] in x] == [f"volume-{ids['a']}@volume-{ids['c']}.clone_snap"]


# Parents and children deleted in every order. Two families between them hold every kind
# of dependency: a volume `a` with a snapshot `s`, a volume `b` made from it and a clone
# `c` of `a`; and a chain of clones a <- c <- d, whose middle and top may both end up
# hidden. Data must survive each step, and the pool must end up with no image, hidden
# image or snapshot of theirs.
SETUP = [("a", ["volume", "a", 1]), ("a", ["write", "a", 0, 0x11]), ("s", ["snapshot", "s", "a"]),
         ("a", ["write", "a", 0, 0x22]), ("b", ["from_snapshot", "b", "s"]), ("c", ["clone", "c", "a"]),
         ("d", ["clone", "d", "c"])]
EXPECTED = {"a": 0x22, "b": 0x11, "c": 0x22, "d": 0x22}
FAMILIES = {"snapshot-and-clone": "asbc", "clone-chain": "acd"}


def family_ops(members: str, tag: str, order: tuple) -> list:
    def tagged(op: list) -> list:
        return [op[0], *(f"{x}{tag}" if isinstance(x, str) else x for x in op[1:])]
    ops = [tagged(op) for member, op in SETUP if member in members]
    alive = {m for m in members if m in EXPECTED}
    for label in order:
        ops.append(tagged(["delete_snapshot" if label == "s" else "delete_volume", label]))
        alive.discard(label)
        ops += [tagged(["read", v, 0, 65536]) for v in sorted(alive)]
    return ops


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_parents_and_children_deleted_in_every_order_leave_the_pool_clean(family):
    members = FAMILIES[family]
    orders = list(itertools.permutations(members))
    ops = [op for n, order in enumerate(orders) for op in family_ops(members, f"-{n}", order)]
    ids, results = ok(ops)
    reads = [(op[1], r) for op, r in zip(ops, results) if op[0] == "read"]
    wrong = [(label, got) for label, got in reads if got != [EXPECTED[label.split("-")[0]]]]
    assert not wrong, wrong[:5]
    assert len(ids) == len(members) * len(orders)
    assert leftovers(ids) == []


def test_connection_info_is_in_os_bricks_shape():
    ids, results = ok([["volume", "a", 1], ["connect", "a"], ["delete_volume", "a"]],
                      rbd_secret_uuid="457eb676-33da-42ec-9a8c-9293d545c337")
    info_ = results[1]
    assert info_["driver_volume_type"] == "rbd"
    data = info_["data"]
    assert data["name"] == f"{POOL}/volume-{ids['a']}"
    assert data["hosts"] == ["127.0.0.1"] and data["ports"] == ["3300"]
    assert data["auth_enabled"] is True and data["auth_username"] == USER
    assert data["secret_type"] == "ceph" and data["secret_uuid"] == "457eb676-33da-42ec-9a8c-9293d545c337"
    assert data["cluster_name"] == "ceph" and data["volume_id"] == ids["a"]
    assert data["ceph_conf"] == CONF and data["keyring_path"] == KEYRING
    assert "keyring" not in data  # never the key itself
    assert leftovers(ids) == []


def qemu_img(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["qemu-img", *args], capture_output=True, text=True, check=False, timeout=120)


def first_bytes(tmp_path, name: str) -> set:
    """The distinct byte values of the first 64 KiB of an image qemu-img opens as `name`."""
    out = tmp_path / "read.raw"
    proc = qemu_img("convert", "-f", "raw", "-O", "raw", name, str(out))
    assert proc.returncode == 0, proc.stderr
    with open(out, "rb") as data:
        return set(data.read(65536))


def test_backups_open_the_snapshot_and_the_volume_with_qemu_img(tmp_path):
    # The keyring under a name with characters qemu splits an rbd: filename at: it must reach librados whole.
    keyring = tmp_path / "client:cinder\\b.keyring"
    keyring.write_bytes(open(KEYRING, "rb").read())
    ops = [["volume", "a", 1], ["write", "a", 0, 0x11], ["snapshot", "s", "a"], ["write", "a", 0, 0x22],
           ["image_of", "s"], ["image_of", "a"]]
    results = ok(ops, rbd_keyring_conf=str(keyring))[1]
    (snap_name, snap_format), (volume_name, volume_format) = results[4], results[5]
    assert snap_format == volume_format == "raw"
    key = open(KEYRING).read().split("key = ")[1].split()[0]
    assert key not in snap_name and key not in volume_name  # the keyring's path only, never the key
    # the snapshot holds the data of when it was taken (what a backup reads), the volume what was written after
    assert first_bytes(tmp_path, snap_name) == {0x11} and first_bytes(tmp_path, volume_name) == {0x22}
    # a restore writes into the volume through its name
    source = tmp_path / "snapshot.raw"
    assert qemu_img("convert", "-f", "raw", "-O", "raw", snap_name, str(source)).returncode == 0
    proc = qemu_img("convert", "-n", "-f", "raw", "-O", "raw", str(source), volume_name)
    assert proc.returncode == 0, proc.stderr
    assert first_bytes(tmp_path, volume_name) == {0x11}
    # the keyring named is the one used (the test conf would find the right key by itself): a wrong key there fails
    keyring.write_text(f"[client.{USER}]\n\tkey = AQBjkPxkAAAAABAAn6j4OKjMQ9ZWGdEbhNRuyg==\n")
    # (the same name opened above: only the key differs)
    proc = qemu_img("info", snap_name)
    assert proc.returncode != 0 and "error connecting" in proc.stderr, proc.stderr


def test_stats_come_from_the_cluster():
    ids, results = ok([["volume", "a", 3], ["stats"], ["delete_volume", "a"]])
    stats = results[1]
    assert stats["driver"] == "rbd"
    # The test cluster runs a ceph-mgr, so capacity is known.
    assert isinstance(stats["total_capacity_gb"], float) and stats["total_capacity_gb"] > 0
    assert 0 < stats["free_capacity_gb"] <= stats["total_capacity_gb"]
    assert stats["provisioned_capacity_gb"] >= 3 and stats["volume_count"] >= 1
    assert stats["pools"][0]["name"] == POOL
    assert leftovers(ids) == []


def error_of(tmp_path, ops=(("check",),), **overrides) -> dict:
    results = run([list(op) for op in ops], **overrides)[1]
    assert "error" in results[0], results
    return results[0]


def test_unreachable_cluster_fails_within_the_connect_timeout(tmp_path):
    conf = tmp_path / "unreachable.conf"
    conf.write_text("[global]\nmon host = v2:127.0.0.1:3999\n")
    err = error_of(tmp_path, rbd_ceph_conf=str(conf), rados_connect_timeout=2)
    assert err["option"] == "backend.rados_connect_timeout"
    assert "did not answer within rados_connect_timeout (2 s)" in err["msg"]
    assert "v2:127.0.0.1:3999" in err["msg"]


def test_missing_pool_is_named():
    err = error_of(None, rbd_pool="no-such-pool")
    assert err["option"] == "backend.rbd_pool"
    assert "no pool 'no-such-pool'" in err["msg"] and POOL in err["msg"]


def test_wrong_key_is_refused(tmp_path):
    keyring = tmp_path / "wrong.keyring"
    keyring.write_text(f"[client.{USER}]\n\tkey = AQBjkPxkAAAAABAAn6j4OKjMQ9ZWGdEbhNRuyg==\n")
    err = error_of(tmp_path, rbd_keyring_conf=str(keyring))
    assert err["option"] == "backend.rbd_keyring_conf"
    assert f"refused client.{USER}" in err["msg"]


def test_user_without_a_key_is_named():
    err = error_of(None, rbd_user="nobody")
    assert err["option"] == "backend.rbd_keyring_conf"
    assert "holds no key for client.nobody" in err["msg"] and f"client.{USER}" in err["msg"]


def test_missing_files_are_named(tmp_path):
    err = error_of(tmp_path, rbd_ceph_conf=str(tmp_path / "missing.conf"))
    assert err["option"] == "backend.rbd_ceph_conf" and "does not exist" in err["msg"]
    err = error_of(tmp_path, rbd_keyring_conf=str(tmp_path / "missing.keyring"))
    assert err["option"] == "backend.rbd_keyring_conf" and "does not exist" in err["msg"]
