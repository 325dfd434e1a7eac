# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The "Invoked with ..." line a module logs on the target host never holds a backend's secret options.

AnsibleModule logs it at the end of its __init__, to the systemd journal when the Python bindings and
a booted systemd are there, else to syslog through /dev/log. This machine has neither a journal nor
/dev/log, so the test gives the real module a real /dev/log: in a private mount namespace (as root),
/dev becomes a tmpfs with the few device nodes bind-mounted back, a datagram socket listens on /dev/log,
and the module runs as Ansible runs it (its file, an arguments file). What the socket receives is
exactly what syslogd, and so the journal, would get.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import ansible_collections
import pytest

SECRET = "SanPa55-w0rd-Zx81"
VISIBLE = "visible-login-7"
CINDER = {"name": "c1", "driver": "cinder", "volume_driver": "cinder.volume.drivers.lvm.LVMVolumeDriver",
          "san_login": VISIBLE, "san_password": SECRET}

CAPTURE = textwrap.dedent("""
    import os, socket, subprocess, sys
    work, python, module, args, pythonpath = sys.argv[1:]
    real = os.path.join(work, "realdev")
    os.mkdir(real)
    def mount(*argv):
        subprocess.run(["mount", *argv], check=True)
    mount("--bind", "/dev", real)
    mount("-t", "tmpfs", "tmpfs", "/dev")
    for name in ("null", "zero", "urandom", "random", "full"):
        open("/dev/" + name, "w").close()
        mount("--bind", os.path.join(real, name), "/dev/" + name)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind("/dev/log")
    proc = subprocess.run([python, module, args], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=pythonpath))
    listener.settimeout(1)
    messages = []
    try:
        while True:
            messages.append(listener.recv(65536).decode("utf-8", "replace"))
    except socket.timeout:
        pass
    sys.stdout.write("\\n".join(messages) + "\\n--- module result ---\\n" + proc.stdout)
""")


def _pythonpath() -> str:
    """The collection tree and the ansible package this test runs with (ansible-test puts it on PYTHONPATH)."""
    import ansible
    paths = [_collections_root(), os.path.dirname(os.path.dirname(ansible.__file__)), os.environ.get("PYTHONPATH", "")]
    return os.pathsep.join(p for p in paths if p)


def _collections_root() -> str:
    for path in ansible_collections.__path__:
        if os.path.isdir(os.path.join(path, "blockstore", "storage")):
            return os.path.dirname(path)
    raise AssertionError("the collection is not importable")


def _syslog_of(tmp_path, backend: dict) -> tuple[str, str]:
    root = _collections_root()
    module = os.path.join(root, "ansible_collections", "blockstore", "storage", "plugins", "modules",
                          "storage_volume.py")
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {
        "name": "v1", "size": 1, "backend": backend,
        "persistence": {"storage": "file", "path": str(tmp_path / "state.json")}}}))
    script = tmp_path / "capture.py"
    script.write_text(CAPTURE)
    work = tmp_path / "ns"
    work.mkdir()
    command = ["unshare", "-m", "--propagation", "private", sys.executable, str(script), str(work),
               sys.executable, module, str(args), _pythonpath()]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    logged, _sep, result = proc.stdout.partition("--- module result ---")
    assert result.strip(), proc.stdout + proc.stderr  # the module ran and answered
    return logged, result


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare for a /dev/log")
def test_a_cinder_backends_san_password_is_not_in_the_target_hosts_log(tmp_path):
    logged, result = _syslog_of(tmp_path, dict(CINDER))
    # Positive control: the line was captured, with the backend's other options in it.
    assert "Invoked with" in logged and VISIBLE in logged, logged
    assert SECRET not in logged
    assert SECRET not in result


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare for a /dev/log")
def test_a_backend_given_as_json_text_is_masked_too(tmp_path):
    logged, _result = _syslog_of(tmp_path, json.dumps(CINDER))
    assert "Invoked with" in logged and VISIBLE in logged, logged
    assert SECRET not in logged
