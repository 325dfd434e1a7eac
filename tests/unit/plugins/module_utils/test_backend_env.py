# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secret backend options from BLOCKSTORE_BACKEND_<OPTION> (how AWX credentials reach drivers)."""

from __future__ import annotations

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils import drivers
from ansible_collections.blockstore.storage.plugins.module_utils.backend_env import (
    env_name,
    fill_secrets_from_env,
)
from ansible_collections.blockstore.storage.plugins.module_utils.config import Opt
from ansible_collections.blockstore.storage.plugins.module_utils.drivers import build_driver
from ansible_collections.blockstore.storage.plugins.module_utils.drivers.base import Driver

SAN = {"name": "array", "driver": "cinder", "volume_driver": "cinder.volume.drivers.example.SanDriver",
       "san_ip": "192.0.2.7", "san_login": "admin"}


class VaultDriver(Driver):
    """A driver declaring a secret option, as a native driver would."""

    name = "vault"
    options = (Opt("endpoint", required=True), Opt("api_token", secret=True, required=True),
               Opt("port", "int", default=443))


@pytest.fixture()
def vault_driver(monkeypatch):
    monkeypatch.setitem(drivers.DRIVERS, "vault", lambda: VaultDriver)


def test_variable_names():
    assert env_name("san_password") == "BLOCKSTORE_BACKEND_SAN_PASSWORD"


def test_cinder_secret_option_filled_and_masked():
    backend = fill_secrets_from_env(SAN, {"BLOCKSTORE_BACKEND_SAN_PASSWORD": "s3cret"})
    assert backend == {**SAN, "san_password": "s3cret"}
    assert SAN.get("san_password") is None  # the task's dict is not changed in place
    driver = build_driver(backend)
    assert driver.driver_options["san_password"] == "s3cret"
    assert "san_password" in type(driver).secret_option_names(backend)


def test_value_in_task_wins():
    given = {**SAN, "san_password": "from-task"}
    assert fill_secrets_from_env(given, {"BLOCKSTORE_BACKEND_SAN_PASSWORD": "from-env"}) == given


def test_options_that_are_not_secret_are_not_read():
    environ = {"BLOCKSTORE_BACKEND_SAN_LOGIN": "intruder", "BLOCKSTORE_BACKEND_SAN_IP": "198.51.100.1",
               "BLOCKSTORE_BACKEND_VOLUME_DRIVER": "os.system"}
    assert fill_secrets_from_env(SAN, environ) == SAN


def test_empty_variable_counts_as_unset():
    assert "san_password" not in fill_secrets_from_env(SAN, {"BLOCKSTORE_BACKEND_SAN_PASSWORD": ""})


def test_driver_without_secrets_ignores_the_environment():
    backend = {"name": "lab", "driver": "file", "path": "/srv/lab"}
    environ = {"BLOCKSTORE_BACKEND_SAN_PASSWORD": "s3cret", "BLOCKSTORE_BACKEND_PATH": "/etc"}
    assert fill_secrets_from_env(backend, environ) == backend
    assert build_driver(fill_secrets_from_env(backend, environ)).conf["path"] == "/srv/lab"


def test_declared_secret_option_of_a_native_driver(vault_driver):
    backend = {"name": "v", "driver": "vault", "endpoint": "https://vault.example"}
    filled = fill_secrets_from_env(backend, {"BLOCKSTORE_BACKEND_API_TOKEN": "tok",
                                             "BLOCKSTORE_BACKEND_PORT": "8443"})
    assert filled == {**backend, "api_token": "tok"}  # port is not secret: not taken
    assert build_driver(filled).conf == {"endpoint": "https://vault.example", "api_token": "tok", "port": 443}


def test_missing_secret_still_named_when_the_environment_lacks_it(vault_driver):
    from ansible_collections.blockstore.storage.plugins.module_utils.errors import InvalidParameter

    backend = {"name": "v", "driver": "vault", "endpoint": "https://vault.example"}
    with pytest.raises(InvalidParameter, match=r"backend\.api_token: required by driver 'vault'"):
        build_driver(fill_secrets_from_env(backend, {}))


@pytest.mark.parametrize("backend", [None, "lab", ["x"], {"name": "x", "driver": "nosuch"}, {"name": "x"}])
def test_what_build_driver_reports_is_left_alone(backend):
    assert fill_secrets_from_env(backend, {"BLOCKSTORE_BACKEND_SAN_PASSWORD": "s3cret"}) == backend


def test_section_of_a_backends_file_without_its_password(tmp_path):
    pytest.importorskip("oslo_config.cfg")
    from ansible_collections.blockstore.storage.plugins.module_utils.backends_file import resolve_backend

    conf = tmp_path / "backends.conf"
    conf.write_text("[DEFAULT]\nenabled_backends = array\n\n[array]\n"
                    "volume_driver = cinder.volume.drivers.example.SanDriver\nsan_ip = 192.0.2.7\n")
    backend = fill_secrets_from_env(resolve_backend("array", str(conf)),
                                    {"BLOCKSTORE_BACKEND_SAN_PASSWORD": "s3cret"})
    assert backend["san_password"] == "s3cret" and backend["san_ip"] == "192.0.2.7"
