# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backends files: sections to backend dicts, and the errors a user sees for bad files."""

from __future__ import annotations

import re

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils.backends_file import (
    refers_to_file,
    resolve_backend,
)
from ansible_collections.blockstore.storage.plugins.module_utils.config import Opt, describe_type, to_oslo_opt
from ansible_collections.blockstore.storage.plugins.module_utils.drivers import build_driver
from ansible_collections.blockstore.storage.plugins.module_utils.errors import InvalidParameter

cfg = pytest.importorskip("oslo_config.cfg")

GOOD = """
[DEFAULT]
enabled_backends = lab, ceph, array

[lab]
driver = file
path = /srv/lab
format = qcow2

[ceph]
volume_driver = cinder.volume.drivers.rbd.RBDDriver
volume_backend_name = ceph
rbd_pool = volumes
rbd_max_clone_depth = 3
rbd_flatten_volume_from_snapshot = true

[array]
volume_driver = cinder.volume.drivers.lvm.LVMVolumeDriver
volume_group = cinder-volumes
target_helper = tgtadm

[disabled]
driver = file
path = /srv/off
"""


@pytest.fixture
def conf_file(tmp_path):
    def write(text: str = GOOD) -> str:
        path = tmp_path / "backends.conf"
        path.write_text(text)
        return str(path)
    return write


def error_of(backend, path):
    with pytest.raises(InvalidParameter) as caught:
        resolve_backend(backend, path)
    return caught.value


def test_a_string_picks_its_section_with_typed_options(conf_file):
    path = conf_file()
    assert resolve_backend("lab", path) == {"name": "lab", "driver": "file", "path": "/srv/lab", "format": "qcow2"}


def test_cinder_rbd_class_maps_to_the_native_rbd_driver_with_typed_values(conf_file):
    backend = resolve_backend("ceph", conf_file())
    assert backend == {"name": "ceph", "driver": "rbd", "rbd_pool": "volumes", "rbd_max_clone_depth": 3,
                       "rbd_flatten_volume_from_snapshot": True}
    assert build_driver(backend).conf["rbd_max_clone_depth"] == 3


def test_other_cinder_classes_go_to_the_adapter_with_their_options_as_text(conf_file):
    backend = resolve_backend("array", conf_file())
    assert backend == {"name": "array", "driver": "cinder",
                       "volume_driver": "cinder.volume.drivers.lvm.LVMVolumeDriver",
                       "volume_group": "cinder-volumes", "target_helper": "tgtadm"}
    driver = build_driver(backend)
    assert driver.driver_options == {"volume_group": "cinder-volumes", "target_helper": "tgtadm"}


def test_a_dict_names_a_section_and_overrides_options(conf_file):
    path = conf_file()
    assert resolve_backend({"section": "ceph", "rbd_pool": "other"}, path)["rbd_pool"] == "other"
    assert resolve_backend({"name": "ceph", "rbd_user": "cinder"}, path)["rbd_user"] == "cinder"
    renamed = resolve_backend({"section": "lab", "name": "lab2"}, path)
    assert renamed["name"] == "lab2" and renamed["path"] == "/srv/lab"


def test_a_driver_override_runs_the_rbd_section_through_the_cinder_adapter(conf_file):
    backend = resolve_backend({"section": "ceph", "driver": "cinder"}, conf_file())
    assert backend["driver"] == "cinder"
    assert backend["volume_driver"] == "cinder.volume.drivers.rbd.RBDDriver"
    assert backend["rbd_pool"] == "volumes" and backend["volume_backend_name"] == "ceph"


def test_inline_backends_are_left_alone(conf_file):
    inline = {"name": "x", "driver": "file", "path": "/srv/x"}
    assert resolve_backend(inline, conf_file()) is inline
    assert resolve_backend({"name": "x", "path": "/srv"}, None) == {"name": "x", "path": "/srv"}
    assert not refers_to_file(inline) and refers_to_file("lab") and refers_to_file({"section": "lab"})


def test_overrides_are_checked_like_task_parameters(conf_file):
    backend = resolve_backend({"section": "ceph", "rbd_max_clone_depth": "deep"}, conf_file())
    with pytest.raises(InvalidParameter, match=re.escape("backend.rbd_max_clone_depth: 'deep' is not an integer")):
        build_driver(backend)


def test_a_cinder_section_passes_every_option_but_driver_to_the_cinder_driver(conf_file):
    text = GOOD.replace("enabled_backends = lab, ceph, array", "enabled_backends = lab, ceph, array, san") + (
        "\n[san]\ndriver = cinder\nvolume_driver = cinder.volume.drivers.lvm.LVMVolumeDriver\n"
        "chap_username = admin\nvolume_group = vg\n")
    backend = resolve_backend("san", conf_file(text))
    assert build_driver(backend).driver_options == {"chap_username": "admin", "volume_group": "vg"}


def test_several_unknown_options_are_all_named_and_the_first_is_the_option(conf_file):
    text = GOOD.replace("enabled_backends = lab, ceph, array", "enabled_backends = lab, ceph, array, bad") + (
        "\n[bad]\nvolume_driver = cinder.volume.drivers.rbd.RBDDriver\nrbd_zzz = y\nrbd_poool = x\n")
    error = error_of("bad", conf_file(text))
    assert "unknown option(s) rbd_poool, rbd_zzz for driver 'rbd'" in error.msg
    assert error.option == "bad.rbd_poool"


@pytest.mark.parametrize(("text", "section", "message"), [
    (GOOD + "\n[bad]\ndriver = file\npath = /x\nformat = vmdk\n", "bad",
     r"\[bad\] format = 'vmdk' is not valid .*allowed: one of raw, qcow2"),
    (GOOD + "\n[bad]\nvolume_driver = cinder.volume.drivers.rbd.RBDDriver\nrbd_max_clone_depth = many\n", "bad",
     r"\[bad\] rbd_max_clone_depth = 'many' is not valid .*allowed: an integer >= 0"),
    (GOOD + "\n[bad]\nvolume_driver = cinder.volume.drivers.rbd.RBDDriver\nrbd_max_clone_depth = -2\n", "bad",
     r"\[bad\] rbd_max_clone_depth = '-2' is not valid .*allowed: an integer >= 0"),
    (GOOD + "\n[bad]\nvolume_driver = cinder.volume.drivers.rbd.RBDDriver\nrbd_flatten_volume_from_snapshot = "
            "maybe\n", "bad", r"\[bad\] rbd_flatten_volume_from_snapshot = 'maybe' is not valid .*a boolean"),
    (GOOD + "\n[bad]\nvolume_driver = cinder.volume.drivers.rbd.RBDDriver\nrbd_poool = x\n", "bad",
     r"\[bad\]: unknown option\(s\) rbd_poool for driver 'rbd'; allowed: .*rbd_pool"),
    (GOOD + "\n[bad]\npath = /x\n", "bad", r"\[bad\]: no driver; set volume_driver"),
    (GOOD + "\n[bad]\ndriver = nfs\n", "bad", r"\[bad\]: driver 'nfs' is not a known driver"),
    (GOOD + "\n[bad]\ndriver = file\nvolume_driver = cinder.volume.drivers.rbd.RBDDriver\n", "bad",
     r"volume_driver cinder.volume.drivers.rbd.RBDDriver does not run on driver 'file'"),
    (GOOD + "\n[bad]\ndriver = rbd\nvolume_driver = cinder.volume.drivers.lvm.LVMVolumeDriver\n", "bad",
     r"volume_driver cinder.volume.drivers.lvm.LVMVolumeDriver does not run on driver 'rbd'"),
])
def test_bad_sections_name_the_file_section_option_and_allowed_values(conf_file, text, section, message):
    text = text.replace("enabled_backends = lab, ceph, array", "enabled_backends = lab, ceph, array, bad")
    path = conf_file(text)
    error = error_of(section, path)
    assert path in error.msg
    assert error.option.startswith(f"{section}.") or error.option == "backends_file"
    assert re.search(message, error.msg), error.msg


def test_file_level_errors(conf_file, tmp_path):
    assert "no backends file is given" in error_of("lab", None).msg
    assert "BLOCKSTORE_BACKENDS_FILE" in error_of("lab", None).msg
    assert "does not exist" in error_of("lab", str(tmp_path / "missing.conf")).msg
    assert "must be an absolute path" in error_of("lab", "relative.conf").msg
    assert "not a valid INI file" in error_of("lab", conf_file("[DEFAULT\nx")).msg
    assert "has no enabled_backends" in error_of("lab", conf_file("[lab]\ndriver = file\n")).msg
    path = conf_file()
    assert "has no section [nope]; enabled backends: lab, ceph, array" in error_of("nope", path).msg
    assert "is not in enabled_backends" in error_of("disabled", path).msg
    assert "must name a section" in error_of({"section": ""}, path).msg


@pytest.mark.parametrize(("line", "section", "option", "comment"), [
    ("format = qcow2 ; sparse overlays", "lab", "format", "; sparse overlays"),
    ("format = qcow2\t# sparse overlays", "lab", "format", "# sparse overlays"),
    ("enabled_backends = lab, ceph, array   ; all three", "DEFAULT", "enabled_backends", "; all three"),
])
def test_an_inline_comment_is_refused_naming_file_section_and_option(conf_file, line, section, option, comment):
    key = line.split(" ", 1)[0]
    text = "\n".join(line if ln.startswith(key + " ") else ln for ln in GOOD.splitlines())
    path = conf_file(text)
    error = error_of("lab", path)
    assert error.msg.startswith(f"backends_file: {path} [{section}] {option} = ")
    assert f"holds an inline comment ({comment!r})" in error.msg
    assert "put comments on their own line" in error.msg
    assert error.option == f"{section}.{option}"


def test_comments_on_their_own_line_and_hashes_inside_values_are_kept(conf_file):
    text = GOOD.replace("[lab]\n", "[lab]\n; the lab's files\n# (raw by default)\n").replace(
        "path = /srv/lab", "path = /srv/lab#1;x")
    assert resolve_backend("lab", conf_file(text)) == {"name": "lab", "driver": "file", "path": "/srv/lab#1;x",
                                                       "format": "qcow2"}


def test_a_missing_backend_names_module_defaults(conf_file):
    error = error_of(None, conf_file())
    assert error.option == "backend"
    assert "module_defaults: group/blockstore.storage.storage" in error.msg


def test_the_global_oslo_config_is_never_touched(conf_file):
    before = set(cfg.CONF)
    resolve_backend("ceph", conf_file())
    resolve_backend("lab", conf_file())
    assert set(cfg.CONF) == before


@pytest.mark.parametrize(("opt", "kind", "extra"), [
    (Opt("a", "str", default="x", help="h", choices=("x", "y")), cfg.StrOpt, {"choices": ("x", "y")}),
    (Opt("b", "int", default=5, min=0, help="h"), cfg.IntOpt, {"min": 0}),
    (Opt("c", "bool", default=True, help="h"), cfg.BoolOpt, {}),
    (Opt("d", "path", help="h", secret=True), cfg.StrOpt, {}),
])
def test_our_declarations_become_oslo_opts(opt, kind, extra):
    oslo = to_oslo_opt(opt, cfg)
    assert isinstance(oslo, kind)
    assert (oslo.name, oslo.default, oslo.help, oslo.secret) == (opt.name, opt.default, opt.help, opt.secret)
    if "choices" in extra:
        assert tuple(oslo.type.choices) == extra["choices"]
    if "min" in extra:
        assert oslo.type.min == extra["min"]
    assert describe_type(opt)


@pytest.mark.parametrize("section", ["Ceph", "ABC", "lab"])
def test_a_section_is_found_whatever_its_name_sorts_like(conf_file, section):
    # Only [DEFAULT] is not a backend: a section named in capitals (sorting before it) is one like any other.
    path = conf_file(GOOD.replace("lab", section))  # the section, its path and enabled_backends
    assert resolve_backend(section, path) == {"name": section, "driver": "file", "path": f"/srv/{section}",
                                              "format": "qcow2"}
