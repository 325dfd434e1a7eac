# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Driver `cinder`: its own options, the private configuration, light objects, the missing
library, and (with cinder and the test Ceph) exactly what it changes process-wide."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils.drivers import build_driver
from ansible_collections.blockstore.storage.plugins.module_utils.drivers.cinder import CinderDriver
from ansible_collections.blockstore.storage.plugins.module_utils.drivers.cinder_objects import (
    CinderObject,
    Configuration,
)
from ansible_collections.blockstore.storage.plugins.module_utils.errors import InvalidParameter, MissingDependency
from ansible_collections.blockstore.storage.plugins.module_utils.objects import Volume

RBD = "cinder.volume.drivers.rbd.RBDDriver"
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), *[".."] * 5))


def backend(**options):
    return {"name": "c", "driver": "cinder", "volume_driver": RBD, **options}


def test_own_options_are_checked_and_the_rest_is_kept_for_the_cinder_driver():
    driver = build_driver(backend(rbd_pool="volumes", rbd_max_clone_depth=3, san_password="pw"))
    assert driver.class_path == RBD
    assert driver.driver_options == {"rbd_pool": "volumes", "rbd_max_clone_depth": 3, "san_password": "pw"}
    assert CinderDriver.secret_option_names(backend(san_password="x", chap_secret="y", rbd_pool="z")) == [
        "san_password", "chap_secret"]


@pytest.mark.parametrize(("given", "message"), [
    ({"volume_driver": None}, "backend.volume_driver: required"),
    ({"volume_driver": "not a path"}, "is not a class path"),
    ({"volume_driver": RBD, "bad-name": 1}, "'bad-name' is not an option name"),
    ({"volume_driver": RBD, "rbd_pool": object()}, "backend.rbd_pool: must be text"),
])
def test_bad_adapter_options(given, message):
    with pytest.raises(InvalidParameter, match=message):
        build_driver({"name": "c", "driver": "cinder", **{k: v for k, v in given.items() if v is not None}})


def test_without_cinder_the_task_fails_naming_the_library():
    if importlib.util.find_spec("cinder") is not None:
        pytest.skip("cinder is installed in this Python")
    driver = build_driver(backend())
    with pytest.raises(MissingDependency, match=r"required Python library \(cinder\).*requirements-cinder.txt") as err:
        driver.create_volume(Volume(id="6b7c4c1e-3f0a-4b51-9a36-2f8e1d0c9a11", name="v", backend="c", size=1))
    assert err.value.library == "cinder"


def test_configuration_is_private_typed_and_reports_unknown_options():
    cfg = pytest.importorskip("oslo_config.cfg")
    before = set(cfg.CONF)
    conf = Configuration(cfg, "c", {"rbd_pool": "volumes", "rbd_max_clone_depth": "3", "flag": "true",
                                    "typo": "x"}, {"rbd_keyring_conf": "/k"})
    conf.append_config_values([cfg.StrOpt("rbd_pool", default="rbd"), cfg.IntOpt("rbd_max_clone_depth", default=5),
                               cfg.BoolOpt("flag", default=False), cfg.StrOpt("rbd_user", secret=True)])
    assert (conf.rbd_pool, conf.rbd_max_clone_depth, conf.flag, conf.rbd_user) == ("volumes", 3, True, None)
    assert conf.safe_get("nothing") is None and getattr(conf, "nothing", "absent") == "absent"
    assert conf.rbd_keyring_conf == "/k"  # read by RBDDriver as a plain attribute, as cinderlib set it
    assert conf.unknown() == ["typo"] and conf.secret_names() == ["rbd_user"]
    conf.set_default("rbd_user", "cinder")
    assert conf.rbd_user == "cinder"
    assert set(cfg.CONF) == before  # never the process-wide configuration
    with pytest.raises(InvalidParameter, match=r"backend\.depth: 'deep' is not valid for the Cinder driver's option"):
        Configuration(cfg, "c", {"depth": "deep"}, {}).append_config_values([cfg.IntOpt("depth")])


def test_light_objects_act_like_cinders_versioned_objects():
    obj = CinderObject(id="x", name="volume-x", size=1, provider_location=None, metadata={})
    assert obj["name"] == "volume-x" and obj.get("missing", 5) == 5 and "size" in obj
    obj.update({"provider_location": "loc"})
    obj.save()
    obj["provider_auth"] = "CHAP u p"
    assert obj.changes() == {"provider_location": "loc", "provider_auth": "CHAP u p"}
    with pytest.raises(KeyError):
        obj["nothing"]


def _cinder_python():
    python = os.environ.get("BLOCKSTORE_TEST_RBD_PYTHON") or os.path.join(REPO, ".venv-rbd", "bin", "python")
    if not os.path.exists(python) or subprocess.run([python, "-W", "ignore", "-c", "import cinder, rados"],
                                                    check=False, capture_output=True).returncode:
        return None
    return python


def test_process_wide_effects_are_exactly_the_documented_ones(tmp_path):
    python = _cinder_python()
    conf = os.environ.get("BLOCKSTORE_TEST_CEPH_CONF")
    if python is None or not conf:
        pytest.skip("needs cinder in the rbd interpreter (scripts/setup-cinder.sh) and the test Ceph "
                    "(scripts/test.sh starts it)")
    given = backend(rbd_pool=os.environ["BLOCKSTORE_TEST_CEPH_POOL"], rbd_ceph_conf=conf,
                    rbd_user=os.environ["BLOCKSTORE_TEST_CEPH_USER"],
                    rbd_keyring_conf=os.environ["BLOCKSTORE_TEST_CEPH_KEYRING"])
    root = tmp_path / "collections"
    (root / "ansible_collections" / "blockstore").mkdir(parents=True)
    (root / "ansible_collections" / "blockstore" / "storage").symlink_to(REPO)
    env = dict(os.environ, PYTHONPATH=str(root), PYTHONWARNINGS="ignore")
    env.pop("EVENTLET_NO_GREENDNS", None)
    done = subprocess.run([python, os.path.join(REPO, "tests", "utils", "cinder_side_effects.py"), json.dumps(given)],
                          check=True, capture_output=True, text=True, env=env)
    report = json.loads(done.stdout)
    changes = report["changes"]
    assert report["stats_driver"] == "cinder"
    assert changes["environ_added"] == ["EVENTLET_NO_GREENDNS"] and changes["environ_changed"] == []
    assert changes["root_handlers_added"] == [] and not changes["root_level_changed"]
    assert changes["loggers_with_handlers_added"] == [] and not changes["logging_disabled_changed"]
    assert changes["signals_changed"] == [] and not changes["stdout_or_stderr_replaced"]
    assert changes["fake_modules_added"] == []
    assert changes["eventlet_monkey_patched"] == []
    assert not changes["global_conf_parsed"] and changes["global_conf_overrides"] == []
    assert changes["threads_added"] == 0


class RecordingCinderDriver:
    """Stands in for a Cinder volume driver class (the adapter's `_impl`): an export with CHAP
    credentials in its model update, and a record of what each call was handed."""

    SECRET = "CHAP bsuser s3cret-chap-password"

    def __init__(self) -> None:
        self.handed: dict[str, object] = {}

    def create_volume(self, volume):
        return {"provider_location": f"lab/{volume.name}"}

    def delete_volume(self, volume):
        self.handed["delete_volume"] = volume.name

    def create_export(self, context, volume, connector):
        return {"provider_auth": self.SECRET}

    def initialize_connection(self, volume, connector):
        return {"driver_volume_type": "iscsi", "data": {"target_iqn": f"iqn.test:{volume.name}", "target_lun": 1}}

    def terminate_connection(self, volume, connector):
        self.handed["terminate_connection"] = volume.provider_auth

    def remove_export(self, context, volume):
        self.handed["remove_export"] = volume.provider_auth


def test_a_force_delete_hands_the_cinder_driver_the_clear_secret():
    """storage_volume state=absent force=true disconnects first: the Cinder driver's
    terminate_connection and remove_export get the export's credentials in clear, not the
    sealed token the store keeps."""
    from ansible_collections.blockstore.storage.plugins.module_utils.attachments import AttachmentResource
    from ansible_collections.blockstore.storage.plugins.module_utils.handler import Task, dispatch
    from ansible_collections.blockstore.storage.plugins.module_utils.persistence import open_store
    from ansible_collections.blockstore.storage.plugins.module_utils.volumes import VolumeResource

    impl = RecordingCinderDriver()
    driver = build_driver(backend())
    driver._impl = impl  # what _load() makes from volume_driver where cinder is installed
    store = open_store({"storage": "memory"})

    def run(handler, **params):
        return dispatch(handler, Task(params, driver=driver), store=store)[0]

    run(VolumeResource, name="v1", size=1)
    run(AttachmentResource, volume="v1", state="connected", connector={"host": "peer", "initiator": "iqn.test:peer"})
    stored = json.dumps(store.all_records())
    assert RecordingCinderDriver.SECRET not in stored and "sealed:v1:" in stored
    result = run(VolumeResource, name="v1", state="absent", force=True)
    assert result["changed"] and store.all_records() == []
    volume_name = "volume-" + result["volume"]["id"]
    assert impl.handed == {"terminate_connection": RecordingCinderDriver.SECRET,
                           "remove_export": RecordingCinderDriver.SECRET, "delete_volume": volume_name}


def test_rbd_clone_chains_deleted_in_any_order_leave_the_pool_empty(tmp_path):
    """Cinder's RBDDriver keeps a deleted source that clones use as `volume-<id>.deleted`, and
    the `<clone>.clone_snap` snapshot of the source while the clone lives; once a clone is
    deleted on Cinder's fast path neither was ever removed. The adapter removes them when the
    last clone goes: the pool is empty after every order, and a hidden parent stays while a
    clone still needs it."""
    python = _cinder_python()
    conf = os.environ.get("BLOCKSTORE_TEST_CEPH_CONF")
    if python is None or not conf:
        pytest.skip("needs cinder in the rbd interpreter (scripts/setup-cinder.sh) and the test Ceph "
                    "(scripts/test.sh starts it)")
    admin = ["--conf", conf, "--id", "admin", "--keyring", os.environ["BLOCKSTORE_TEST_CEPH_ADMIN_KEYRING"]]
    pool = f"cinder-chains-{os.getpid()}"
    subprocess.run(["ceph", *admin, "osd", "pool", "create", pool, "8", "8"], check=True, capture_output=True,
                   stdin=subprocess.DEVNULL)
    try:
        subprocess.run(["rbd", *admin, "pool", "init", pool], check=True, capture_output=True,
                       stdin=subprocess.DEVNULL)
        given = backend(rbd_pool=pool, rbd_ceph_conf=conf, rbd_user="admin",
                        rbd_keyring_conf=os.environ["BLOCKSTORE_TEST_CEPH_ADMIN_KEYRING"])
        root = tmp_path / "collections"
        (root / "ansible_collections" / "blockstore").mkdir(parents=True)
        (root / "ansible_collections" / "blockstore" / "storage").symlink_to(REPO)
        env = dict(os.environ, PYTHONPATH=str(root), PYTHONWARNINGS="ignore")
        done = subprocess.run([python, os.path.join(REPO, "tests", "utils", "cinder_clone_chains.py"),
                               json.dumps(given)], check=False, capture_output=True, text=True, env=env,
                              stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stderr[-3000:]
        report = json.loads(done.stdout)
    finally:
        subprocess.run(["ceph", *admin, "osd", "pool", "delete", pool, pool, "--yes-i-really-really-mean-it"],
                       check=False, capture_output=True, stdin=subprocess.DEVNULL)
    # a <- b <- c (each cloned from the one before)
    assert [step["pool"] for step in report["clones first"]] == [
        {"a": ["b.clone_snap"], "b": []},
        {"a": []},
        {}]
    assert [step["pool"] for step in report["parents first"]] == [
        {"a.deleted": ["b.clone_snap"], "b": ["c.clone_snap"], "c": []},
        {"a.deleted": ["b.clone_snap"], "b.deleted": ["c.clone_snap"], "c": []},
        {}]
    assert [step["pool"] for step in report["middle first"]] == [
        {"a": ["b.clone_snap"], "b.deleted": ["c.clone_snap"], "c": []},
        {"a.deleted": ["b.clone_snap"], "b.deleted": ["c.clone_snap"], "c": []},
        {}]


def test_a_volume_type_reaches_cinders_rbd_driver_as_cinder_hands_it_over(tmp_path):
    """RBDDriver acts on the type's extra spec multiattach='<is> True' (it turns off exclusive-lock and the
    features built on it, and says so in its model update); the type's QoS specs are front-end ones, which
    Cinder puts in the connection info for the consumer. A volume without a type is the control."""
    python = _cinder_python()
    conf = os.environ.get("BLOCKSTORE_TEST_CEPH_CONF")
    if python is None or not conf:
        pytest.skip("needs cinder in the rbd interpreter (scripts/setup-cinder.sh) and the test Ceph "
                    "(scripts/test.sh starts it)")
    given = backend(rbd_pool=os.environ.get("BLOCKSTORE_TEST_CEPH_POOL", "rbd"), rbd_ceph_conf=conf,
                    rbd_user=os.environ.get("BLOCKSTORE_TEST_CEPH_USER", "cinder"),
                    rbd_keyring_conf=os.environ["BLOCKSTORE_TEST_CEPH_KEYRING"])
    spec = {"name": "shared", "extra_specs": {"multiattach": "<is> True"}, "qos_specs": {"total_iops_sec": 50}}
    root = tmp_path / "collections"
    (root / "ansible_collections" / "blockstore").mkdir(parents=True)
    (root / "ansible_collections" / "blockstore" / "storage").symlink_to(REPO)
    done = subprocess.run([python, os.path.join(REPO, "tests", "utils", "cinder_volume_type.py"), json.dumps(given),
                           json.dumps(spec)], check=False, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(root), PYTHONWARNINGS="ignore"), stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert "exclusive-lock" in report["plain"]["features"] and report["plain"]["qos_specs"] is None
    assert "saved_features" not in json.dumps(report["plain"]["model"])
    assert report["typed"]["features"] == ["layering"]
    assert "saved_features" in report["typed"]["model"]["provider_location"]
    assert report["typed"]["qos_specs"] == {"total_iops_sec": 50}
