# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AWX credential type of docs/awx, checked and used as AWX would use it.

1. inputs.yml and injectors.yml are a well-formed custom credential type: fields with ids, labels
   and types, secrets marked, and injectors that use only those fields.
2. The injectors are rendered the way AWX renders them (Jinja2 in a sandbox, file templates
   written to private files, `tower.filename.<name>` their paths) for a job's inputs, and a real
   ansible-playbook run gets ONLY that environment (no persistence, no backends_file in tasks;
   a fresh HOME): the state goes to the database of BLOCKSTORE_STATE_URL, the backend comes from
   the injected backends file, the CHAP secret of an iSCSI export (through our own tgtd) is sealed
   with BLOCKSTORE_SECRET_KEY, and a real Cinder SAN driver (Cinder's AS13000Driver, talking to
   the small local array API of san_endpoint.py, which checks the password) logs in with the
   san_password of BLOCKSTORE_BACKEND_SAN_PASSWORD; the same job with a wrong password fails
   with the array's refusal.

    .venv/bin/python tests/packaging/awx_credential.py     (run by: bash scripts/test.sh packaging)

Uses $BLOCKSTORE_TEST_PG_URL when set (scripts/test.sh starts PostgreSQL), else SQLite, and the
Python with cinder of scripts/setup-cinder.sh ($BLOCKSTORE_TEST_RBD_PYTHON, else .venv-rbd).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import yaml
from jinja2 import meta
from jinja2.sandbox import ImmutableSandboxedEnvironment
from san_endpoint import POOL, SanEndpoint  # beside this file (the script's directory is on sys.path)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AWX = os.path.join(REPO, "docs", "awx")
VENV_BIN = os.path.dirname(sys.executable)
RBD_PYTHON = os.environ.get("BLOCKSTORE_TEST_RBD_PYTHON") or os.path.join(REPO, ".venv-rbd", "bin", "python")
TGT_CONTROL_PORT, TGT_PORTAL_PORT = 43, 3303
SAN_PASSWORD = "s3cret-from-awx"
SAN_LOGIN = "admin"
FIELD_TYPES = ("string", "boolean")


def fail(msg: str) -> None:
    print(f"awx_credential: FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def load_credential_type() -> tuple[dict, dict]:
    with open(os.path.join(AWX, "inputs.yml")) as f:
        inputs = yaml.safe_load(f)
    with open(os.path.join(AWX, "injectors.yml")) as f:
        injectors = yaml.safe_load(f)
    return inputs, injectors


def check_credential_type(inputs: dict, injectors: dict) -> None:
    """What AWX checks when the type is saved, and what we promise about secrets."""
    fields = inputs.get("fields")
    if not isinstance(fields, list) or not fields:
        fail("inputs.yml: fields must be a non-empty list")
    ids = [f.get("id") for f in fields]
    if len(ids) != len(set(ids)):
        fail(f"inputs.yml: duplicate field ids in {ids}")
    for field in fields:
        for key in ("id", "label", "type", "help_text"):
            if not field.get(key):
                fail(f"inputs.yml: field {field.get('id')!r} lacks {key}")
        if field["type"] not in FIELD_TYPES:
            fail(f"inputs.yml: field {field['id']}: type {field['type']!r} is not one of {FIELD_TYPES}")
    must_be_secret = {"state_url", "secret_key", "backends_file", "san_password", "backend_password", "ceph_keyring"}
    not_secret = sorted(f["id"] for f in fields if f["id"] in must_be_secret and not f.get("secret"))
    if not_secret:
        fail(f"inputs.yml: fields {not_secret} hold secrets and must say secret: true")
    unknown_required = set(inputs.get("required", [])) - set(ids)
    if unknown_required:
        fail(f"inputs.yml: required names unknown fields {sorted(unknown_required)}")
    if set(injectors) - {"env", "file", "extra_vars"}:
        fail(f"injectors.yml: unknown sections {sorted(set(injectors) - {'env', 'file', 'extra_vars'})}")
    files = injectors.get("file", {})
    for key in files:
        if not key.startswith("template."):
            fail(f"injectors.yml: file key {key!r} must be template.<name>")
    jinja = ImmutableSandboxedEnvironment()
    for section, templates in injectors.items():
        for key, template in templates.items():
            used = meta.find_undeclared_variables(jinja.parse(template))
            unknown = used - set(ids) - {"tower"}
            if unknown:
                fail(f"injectors.yml: {section}.{key} uses {sorted(unknown)}, which are not fields of inputs.yml")
    for key, template in injectors.get("env", {}).items():
        if not key.startswith("BLOCKSTORE_"):
            fail(f"injectors.yml: env {key} is not one of blockstore.storage's variables")
        for name in [n for n in (f["id"] for f in fields) if f"tower.filename.{n}" in template]:
            if f"template.{name}" not in files:
                fail(f"injectors.yml: env {key} names tower.filename.{name} but no file template.{name}")


def render(injectors: dict, fields: list[str], values: dict, private_dir: str) -> dict:
    """The environment AWX gives a job for a credential with these input values."""
    jinja = ImmutableSandboxedEnvironment()
    filenames = {}
    for key, template in injectors.get("file", {}).items():
        name = key.split(".", 1)[1]
        path = os.path.join(private_dir, f"cred_{name}")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(jinja.from_string(template).render(**values))
        filenames[name] = path
    namespace = {**{f: "" for f in fields}, **values, "tower": {"filename": filenames}}
    return {key: jinja.from_string(template).render(**namespace) for key, template in injectors.get("env", {}).items()}


def run(argv: list[str], env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        fail(f"{' '.join(argv[:3])}... exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    return proc


def job_env(injected: dict, home: str, collections: str) -> dict:
    """Only what a job process would have: no BLOCKSTORE_* but the injected ones."""
    env = {"PATH": f"{VENV_BIN}:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": home, "LANG": "C.UTF-8",
           "ANSIBLE_COLLECTIONS_PATH": collections, "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
           "ANSIBLE_LOCALHOST_WARNING": "false", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
           "ANSIBLE_NOCOLOR": "1"}
    env.update(injected)
    return env


def start_tgtd(tmp: str) -> str:
    pidfile = os.path.join(tmp, "tgtd.pid")
    run(["tgtd", "-C", str(TGT_CONTROL_PORT), "--iscsi", f"portal=127.0.0.1:{TGT_PORTAL_PORT}", "--pid-file", pidfile])
    show = ["tgtadm", "-C", str(TGT_CONTROL_PORT), "--mode", "system", "--op", "show"]
    for _attempt in range(40):
        if run(show, check=False).returncode == 0:
            return pidfile
        time.sleep(0.25)
    fail("tgtd did not answer")
    return pidfile


def stop_tgtd(pidfile: str) -> None:
    """tgtd ignores SIGTERM and shuts down only without targets: delete them, then the system."""
    tgtadm = ["tgtadm", "-C", str(TGT_CONTROL_PORT)]
    shown = run([*tgtadm, "--lld", "iscsi", "--mode", "target", "--op", "show"], check=False).stdout
    for line in shown.splitlines():
        if line.startswith("Target ") and ":" in line:
            tid = line.split()[1].rstrip(":")
            run([*tgtadm, "--lld", "iscsi", "--mode", "target", "--op", "delete", "--force", "--tid", tid], check=False)
    if run([*tgtadm, "--mode", "system", "--op", "delete"], check=False).returncode == 0:
        return
    try:
        with open(pidfile) as f:
            os.kill(int(f.read().strip()), 9)
    except (OSError, ValueError):
        pass


def records_of(collections: str, url: str, backend: str) -> list[dict]:
    if collections not in sys.path:
        sys.path.insert(0, collections)
    from ansible_collections.blockstore.storage.plugins.module_utils.persistence import open_store

    store = open_store({"storage": "db", "connection": url})
    try:
        return [r for r in store.all_records() if r.get("backend") == backend]
    finally:
        store.close()


def secret_values(obj: object, found: list) -> list:
    from ansible_collections.blockstore.storage.plugins.module_utils.sealing import is_secret_field

    if isinstance(obj, dict):
        for key, value in obj.items():
            if is_secret_field(key) and isinstance(value, str) and value:
                found.append(value)
            else:
                secret_values(value, found)
    elif isinstance(obj, list):
        for value in obj:
            secret_values(value, found)
    return found


def backends_file(tmp: str, lab: str, san_port: int) -> str:
    return (f"[DEFAULT]\nenabled_backends = {lab}, array\n\n"
            f"[{lab}]\ndriver = file\npath = {tmp}/volumes\ntarget = iscsi\niscsi_ip_address = 127.0.0.1\n"
            f"iscsi_port = {TGT_PORTAL_PORT}\ntgt_control_port = {TGT_CONTROL_PORT}\n\n"
            "[array]\nvolume_driver = cinder.volume.drivers.inspur.as13000.as13000_driver.AS13000Driver\n"
            f"san_ip = 127.0.0.1\nsan_api_port = {san_port}\nsan_login = {SAN_LOGIN}\nas13000_ipsan_pools = {POOL}\n")


def check_store(collections: str, url: str, lab: str, key: str, home: str) -> None:
    """Secrets sealed with the injected key (and no other); no key file made."""
    records = records_of(collections, url, lab)
    from ansible_collections.blockstore.storage.plugins.module_utils.errors import StateStoreError
    from ansible_collections.blockstore.storage.plugins.module_utils.sealing import Sealer
    from cryptography.fernet import Fernet

    kinds = sorted(r["kind"] for r in records)
    secrets = secret_values(records, [])
    if not secrets:
        fail(f"no secret in the records of {lab} ({kinds}): the iSCSI export should have CHAP credentials")
    if any(not s.startswith("sealed:v1:") for s in secrets):
        fail("a secret is stored in clear")
    Sealer(key=key).unseal(secrets[0])
    try:
        Sealer(key=Fernet.generate_key().decode()).unseal(secrets[0])
        fail("a sealed secret opened with another key")
    except StateStoreError:
        pass
    made = [os.path.join(root, n) for root, _dirs, names in os.walk(home) for n in names if n.endswith(".key")]
    if made:
        fail(f"a key file was made although the key came from the environment: {made}")
    print(f"-- store: {kinds} in {url.split(':', 1)[0]}; {len(secrets)} secret(s) sealed with the injected key")


def check_san_refuses(injectors: dict, inputs: dict, values: dict, private: str, home: str, collections: str,
                      playbook: list[str], san: SanEndpoint) -> None:
    """The same credential with a wrong SAN password: the SAN task fails with the array's refusal."""
    wrong = "not-" + SAN_PASSWORD
    injected = render(injectors, [f["id"] for f in inputs["fields"]], {**values, "san_password": wrong}, private)
    refused_before = san.refused
    job = run([*playbook, "-e", "phase=san"], env=job_env(injected, home, collections), check=False)
    output = job.stdout + job.stderr
    if job.returncode == 0 or "login refused: wrong user name or password" not in output:
        fail(f"with a wrong san_password the SAN task must fail with the array's refusal (exit {job.returncode}):\n"
             f"{output[-3000:]}")
    if san.refused <= refused_before:
        fail("the array endpoint saw no refused login with the wrong password")
    if wrong in output:
        fail("the wrong SAN password shows in the job's output")
    print("-- the same job with a wrong san_password: refused by the array, as it must be")


def main() -> None:
    inputs, injectors = load_credential_type()
    check_credential_type(inputs, injectors)
    print("-- credential type: well formed")
    if not os.path.exists(RBD_PYTHON) or run([RBD_PYTHON, "-c", "import cinder"], check=False).returncode:
        fail(f"{RBD_PYTHON} has no cinder; run scripts/setup.sh (scripts/setup-cinder.sh)")
    from cryptography.fernet import Fernet

    tmp = tempfile.mkdtemp(prefix="blockstore-awx.")
    pidfile = ""
    san = SanEndpoint(SAN_LOGIN, SAN_PASSWORD)
    try:
        collections = os.path.join(tmp, "collections")
        os.makedirs(os.path.join(collections, "ansible_collections", "blockstore"))
        os.symlink(REPO, os.path.join(collections, "ansible_collections", "blockstore", "storage"))
        home, private = os.path.join(tmp, "home"), os.path.join(tmp, "private")
        os.makedirs(home)
        os.makedirs(private, mode=0o700)
        lab = f"awx-lab-{os.getpid()}"  # the PostgreSQL database may be shared with other test runs
        url = os.environ.get("BLOCKSTORE_TEST_PG_URL") or f"sqlite:///{tmp}/state.db"
        key = Fernet.generate_key().decode()
        values = {"state_url": url, "secret_key": key, "backends_file": backends_file(tmp, lab, san.port),
                  "san_password": SAN_PASSWORD}
        injected = render(injectors, [f["id"] for f in inputs["fields"]], values, private)
        if injected["BLOCKSTORE_STATE_URL"] != url or not os.path.isfile(injected["BLOCKSTORE_BACKENDS_FILE"]):
            fail(f"rendered environment is not as expected: {sorted(k for k, v in injected.items() if v)}")
        if injected["BLOCKSTORE_RBD_KEYRING_FILE"] or injected["BLOCKSTORE_STATE_PATH"]:
            fail("fields left empty must inject empty variables")
        print(f"-- rendered: {', '.join(sorted(k for k, v in injected.items() if v))}")

        pidfile = start_tgtd(tmp)
        playbook = [os.path.join(VENV_BIN, "ansible-playbook"), "-i", "localhost,", "-c", "local",
                    os.path.join(REPO, "tests", "packaging", "awx_job.yml"),
                    "-e", json.dumps({"lab": lab, "python": sys.executable, "cinder_python": RBD_PYTHON})]
        env = job_env(injected, home, collections)
        job = run([*playbook, "-e", "phase=job"], env=env)
        if SAN_PASSWORD in job.stdout + job.stderr:
            fail("the SAN password shows in the job's output")
        if san.accepted < 1 or san.refused:
            fail(f"the array endpoint accepted {san.accepted} login(s) and refused {san.refused}: the SAN driver "
                 "should have logged in with the injected password")
        print(f"-- job with the injected environment only: ok (the SAN driver logged in {san.accepted} time(s))")
        check_san_refuses(injectors, inputs, values, private, home, collections, playbook, san)
        check_store(collections, url, lab, key, home)
        run([*playbook, "-e", "phase=cleanup"], env=env)
        left = records_of(collections, url, lab)
        if left:
            fail(f"records left after the cleanup job: {[r['kind'] for r in left]}")
        print("awx_credential: ok")
    finally:
        san.stop()
        if pidfile:
            stop_tgtd(pidfile)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
