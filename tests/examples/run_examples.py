# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run every example of the documentation twice: the first run must succeed, the second must change nothing.

    python tests/examples/run_examples.py [--list] [--only GLOB] REPO

REPO is the checkout (or the test tree's copy of it) whose examples are read. Run by
`bash scripts/test.sh examples` (and by the full `scripts/test.sh`), which installs the collection
where ANSIBLE_COLLECTIONS_PATH points.

What is an example
  - In README.md, docs/**/*.md and roles/*/README.md: every fenced block whose language is
    yaml/yml (a list of plays, or a list of tasks, which is run as the tasks of a play on localhost)
    or sh/shell/bash (a bash script, run with `set -e`). Other fences (ini, json, text, plain ```)
    are not run; a YAML fence holding something that is neither plays nor tasks (a lone mapping) fails:
    show fragments in a plain fence.
  - The EXAMPLES string of every plugins/modules/*.py (a list of tasks).

Markers: an HTML comment on the line right before a fence (blank lines between are allowed):
  <!-- example: skip - REASON -->   not run; reported as `SKIP <file>:<line>: REASON`.
  <!-- example: file PATH -->       the block (any language) is not run: it is written to PATH (redirected as
                                    below; a relative PATH is in the example's working directory) before each
                                    later example of the same document runs, as the document says it must be.
  <!-- example: after previous -->  the previous runnable example of the same document runs once first (it must
                                    succeed; if it is itself marked `after previous`, the one before it runs
                                    before it, and so on), in the same directories: for an example that changes
                                    what the previous one made (a rename, a delete, a detach).
  <!-- example: needs ceph -->      the example uses a Ceph cluster: the test one (BLOCKSTORE_TEST_CEPH_CONF, its user,
                                    keyring; skipped without it). /etc/ceph/ceph.conf in its text becomes its
                                    configuration, BLOCKSTORE_RBD_KEYRING_FILE (what the AWX credential injects) that
                                    user's keyring, and afterwards the images of the volumes its stores record
                                    (`volume-<id>` in BLOCKSTORE_TEST_CEPH_POOL) are removed.
Module EXAMPLES can carry none; MODULE_SKIPS below holds their skips, with reasons.

How an example runs
  Each example gets a fresh temporary directory T and runs in T/work:
  - Absolute paths under REDIRECTS (/var/lib/blockstore, /srv, /etc/blockstore, ...) in its text are
    rewritten to T/<the same path> (so /srv/volumes becomes T/srv/volumes, and
    sqlite:////var/lib/blockstore/state.db becomes sqlite:///T/var/lib/blockstore/state.db).
  - T/srv and T/var/backups exist, as /srv and /var/backups do on a Debian host.
  - Fixtures: files an example reads that its user already has, made when its text names them:
    /var/lib/cinderlib/state.json (cinderlib.dumps() of backends ceph and lvm: the unit tests' fixture
    cinderlib_dumps.json) and /var/lib/cinderlib/<name>.sqlite (a database in Cinder's schema with the same
    objects: tests/utils/cinder_db_fixture.py, run by BLOCKSTORE_EXAMPLES_CINDER_PYTHON, default the target
    Python, which needs cinder).
  - HOME is T/home (the default state store ~/.ansible/blockstore/state.json lands there),
    BLOCKSTORE_RUN_DIR is T/run (qemu-storage-daemon directories), the BLOCKSTORE_* variables of the
    caller are removed, and every ansible-playbook run gets `-e volume_fstab=T/etc/fstab`, so the volume
    role never writes the machine's /etc/fstab.
  - The inventory has localhost, storage1 and db1, db2 (group db_servers), all with the local connection
    and the target Python BLOCKSTORE_EXAMPLES_PYTHON (default: this Python): the examples' host names
    are this machine.
  - A PostgreSQL URL in the text (postgresql+psycopg://...) becomes BLOCKSTORE_TEST_PG_URL in a schema of the
    example's own, dropped afterwards (the example is skipped when no test PostgreSQL is given).
  - An example whose backend exports over iSCSI (`target: iscsi`) gets a tgtd on control port 0 (the default of
    `tgt_control_port`), portal 127.0.0.1:3260, stopped afterwards; skipped if a tgtd already answers there.
  Plays run with ansible-playbook; the first run must succeed, the second must succeed with changed=0 for
  every host of the PLAY RECAP. Shell examples run twice with bash -e; the second run must succeed, and no
  command in it may report a change (`| CHANGED` from ansible, changed=N>0 in a recap), except commands
  given --check (they only say what would change).
  Afterwards, whatever the outcome: filesystems and FUSE mounts under T are unmounted, loop devices whose
  backing file is under T detached, qemu-storage-daemon processes naming T stopped, the tgtd stopped, the
  schema dropped and T removed; an example that leaves any of these behind fails.

Output: one line per example, `PASS <file>:<line>`, `FAIL <file>:<line>: <why>` (with the runs' output
above it) or `SKIP <file>:<line>: <reason>`; exit 1 if any failed.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field

import yaml

REDIRECTS = ("/var/lib/blockstore", "/var/lib/cinderlib", "/var/backups", "/srv", "/etc/blockstore")
REDIRECT_RE = re.compile(r"(?<![\w.~-])(" + "|".join(re.escape(p) for p in REDIRECTS) + r")(?=[/\s\"',}\]]|$)",
                         re.MULTILINE)
PG_URL_RE = re.compile(r"postgresql(\+psycopg)?://[^\s\"'}]+")
FENCE_RE = re.compile(r"^```\s*([\w+-]*)\s*$")
MARKER_RE = re.compile(r"^<!--\s*example:\s*(.*?)\s*-->\s*$")
RECAP_RE = re.compile(r"^(\S+)\s*:\s*ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE)
YAML_LANGS = ("yaml", "yml")
SHELL_LANGS = ("sh", "shell", "bash")
TRACE = "+EXAMPLE-COMMAND: "
VERBOSE = False

# Module EXAMPLES cannot carry an HTML marker: their skips, by module name, with the reason.
MODULE_SKIPS: dict[str, str] = {}


@dataclass
class Example:
    doc: str          # file, relative to the repository
    line: int         # line of the opening fence (or of EXAMPLES)
    kind: str         # play, tasks, shell, file
    text: str
    marker: str = ""
    previous: Example | None = None
    files: list = field(default_factory=list)  # (path, text) of the `file` blocks before it

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"


def yaml_kind(text: str) -> str:
    data = yaml.safe_load(text)
    if isinstance(data, list) and data and all(isinstance(item, dict) for item in data):
        if any("hosts" in item or "import_playbook" in item for item in data):
            return "play"
        return "tasks"
    return "fragment"


def markdown_examples(repo: str, doc: str) -> list[Example]:
    examples: list[Example] = []
    files: list[tuple[str, str]] = []
    with open(os.path.join(repo, doc), encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    index = 0
    previous = None
    while index < len(lines):
        match = FENCE_RE.match(lines[index])
        if not match:
            index += 1
            continue
        lang, start = match.group(1).lower(), index
        end = start + 1
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        text = "\n".join(lines[start + 1:end]) + "\n"
        index = end + 1
        before = start - 1
        while before >= 0 and not lines[before].strip():
            before -= 1
        marker_match = MARKER_RE.match(lines[before]) if before >= 0 else None
        marker = marker_match.group(1) if marker_match else ""
        if marker.startswith("file "):
            files.append((marker[5:].strip(), text))
            continue
        if lang in YAML_LANGS:
            kind = yaml_kind(text)
        elif lang in SHELL_LANGS:
            kind = "shell"
        else:
            continue
        example = Example(doc, start + 1, kind, text, marker, previous, list(files))
        examples.append(example)
        if not marker.startswith("skip"):
            previous = example
    return examples


def module_examples(repo: str, path: str) -> Example:
    tree = ast.parse(open(os.path.join(repo, path), encoding="utf-8").read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "EXAMPLES" for t in node.targets):
            text = node.value.value
            name = os.path.basename(path)[:-3]
            marker = f"skip - {MODULE_SKIPS[name]}" if name in MODULE_SKIPS else ""
            return Example(path, node.lineno, yaml_kind(text), text, marker)
    raise SystemExit(f"{path}: no EXAMPLES")


def all_examples(repo: str) -> list[Example]:
    docs = ["README.md", *sorted(glob.glob("docs/**/*.md", root_dir=repo, recursive=True)),
            *sorted(glob.glob("roles/*/README.md", root_dir=repo))]
    examples = [e for doc in docs for e in markdown_examples(repo, doc)]
    examples += [module_examples(repo, m) for m in sorted(glob.glob("plugins/modules/*.py", root_dir=repo))
                 if not os.path.basename(m).startswith("_")]
    return examples


class Sandbox:
    """The temporary directory of one example, and everything an example may leave under it."""

    def __init__(self, example: Example, env_python: str):
        self.example = example
        self.root = tempfile.mkdtemp(prefix="bsx.")  # short: qemu-storage-daemon's socket paths are limited
        self.work = os.path.join(self.root, "work")
        os.makedirs(self.work)
        os.makedirs(os.path.join(self.root, "home"))
        for directory in ("etc", "srv", "var/backups"):
            os.makedirs(os.path.join(self.root, directory))
        self.python = env_python
        self.schema = ""
        self.pg_url = ""
        self.tgtd_pid = 0
        self.ceph: dict[str, str] = {}
        self.inventory = os.path.join(self.root, "inventory")
        with open(self.inventory, "w", encoding="utf-8") as handle:
            handle.write("localhost\nstorage1\n\n[db_servers]\ndb1\ndb2\n\n[all:vars]\nansible_connection=local\n"
                         f"ansible_python_interpreter={env_python}\n")

    def fixtures(self, text: str, repo: str) -> None:
        """Make the files of cinderlib's that `text` names (see the docstring)."""
        state = os.path.join(self.root, "var/lib/cinderlib/state.json")
        if "/var/lib/cinderlib/state.json" in text:
            os.makedirs(os.path.dirname(state), exist_ok=True)
            shutil.copy(os.path.join(repo, "tests/unit/plugins/module_utils/fixtures/cinderlib_dumps.json"), state)
        for name in sorted(set(re.findall(r"/var/lib/cinderlib/([\w.-]+\.sqlite)\b", text))):
            database = os.path.join(self.root, "var/lib/cinderlib", name)
            os.makedirs(os.path.dirname(database), exist_ok=True)
            python = os.environ.get("BLOCKSTORE_EXAMPLES_CINDER_PYTHON", self.python)
            subprocess.run([python, os.path.join(repo, "tests/utils/cinder_db_fixture.py"), database],
                           check=True, capture_output=True)

    def rewrite(self, text: str) -> str:
        text = REDIRECT_RE.sub(lambda m: self.root + m.group(1), text)
        if self.pg_url:
            text = PG_URL_RE.sub(self.pg_url, text)
        if self.ceph:
            text = text.replace("/etc/ceph/ceph.conf", self.ceph["conf"])
        return text

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BLOCKSTORE_")}
        env.update(HOME=os.path.join(self.root, "home"), BLOCKSTORE_RUN_DIR=os.path.join(self.root, "run"),
                   ANSIBLE_INVENTORY=self.inventory, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
                   ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_LOCALHOST_WARNING="false",
                   ANSIBLE_INVENTORY_UNPARSED_WARNING="false", ANSIBLE_STDOUT_CALLBACK="default",
                   PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
        if self.ceph:
            env["BLOCKSTORE_RBD_KEYRING_FILE"] = self.ceph["keyring"]
        return env

    def use_ceph(self) -> str:
        """The test Ceph for this example, or why there is none."""
        names = {"conf": "CONF", "keyring": "KEYRING", "user": "USER", "pool": "POOL",
                 "admin_keyring": "ADMIN_KEYRING"}
        ceph = {key: os.environ.get(f"BLOCKSTORE_TEST_CEPH_{name}", "") for key, name in names.items()}
        if not all(ceph.values()):
            return "needs Ceph: no BLOCKSTORE_TEST_CEPH_* (scripts/test.sh starts a test cluster)"
        self.ceph = ceph
        return ""

    def _rbd_images(self) -> list[str]:
        """The rbd images of the volumes recorded in the example's JSON stores."""
        images = []
        paths = [os.path.join(top, name) for top, _, names in os.walk(self.root) for name in names
                 if name.endswith(".json")]  # ~/.ansible/blockstore/state.json too: glob skips hidden directories
        for path in paths:
            try:
                with open(path, encoding="utf-8") as handle:
                    records = json.load(handle).get("records", {})
            except (OSError, ValueError, AttributeError):
                continue
            images += [f"volume-{r['id']}" for r in records.values() if r.get("kind") == "volume"]
        return images

    # -- services the example needs
    def start_postgres(self, url: str) -> None:
        import psycopg  # only the examples that need it

        self.schema = f"examples_{os.getpid()}_{os.path.basename(self.root).split('.')[-1].lower()}"
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as db:
            db.execute(f'CREATE SCHEMA "{self.schema}"')
        parts = urllib.parse.urlsplit(url)
        query = urllib.parse.urlencode({"options": f"-csearch_path={self.schema}"})
        self.pg_url = urllib.parse.urlunsplit(parts._replace(query=query))
        self.pg_admin_url = url

    def start_tgtd(self) -> str:
        if subprocess.run(["tgtadm", "-C", "0", "--mode", "system", "--op", "show"],
                          capture_output=True, check=False).returncode == 0:
            return "a tgtd already answers on control port 0"
        pidfile = os.path.join(self.root, "tgtd.pid")
        subprocess.run(["tgtd", "-C", "0", "--iscsi", "portal=127.0.0.1:3260", "--pid-file", pidfile],
                       stdin=subprocess.DEVNULL, capture_output=True, check=False)
        for _ in range(50):
            if subprocess.run(["tgtadm", "-C", "0", "--mode", "system", "--op", "show"],
                              capture_output=True, check=False).returncode == 0:
                self.tgtd_pid = int(open(pidfile, encoding="utf-8").read().strip())
                return ""
            time.sleep(0.2)
        return "tgtd -C 0 did not start"

    # -- clean-up
    def _mounts(self) -> list[tuple[str, str]]:
        with open("/proc/self/mounts", encoding="utf-8") as handle:
            rows = [line.split()[1:3] for line in handle]
        return [(where.replace("\\040", " "), fstype) for where, fstype in rows
                if where == self.root or where.startswith(self.root + "/")]

    def _loops(self) -> list[str]:
        out = subprocess.run(["losetup", "-l", "-n", "-O", "NAME,BACK-FILE"], capture_output=True, text=True,
                             check=False).stdout
        return [line.split(None, 1)[0] for line in out.splitlines()
                if len(line.split(None, 1)) == 2 and line.split(None, 1)[1].startswith(self.root + "/")]

    def _daemons(self) -> list[int]:
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    argv = handle.read().split(b"\0")
            except OSError:
                continue
            if argv and os.path.basename(argv[0]).startswith(b"qemu-storage-d") and \
                    any(self.root.encode() in arg for arg in argv):
                pids.append(int(entry))
        return pids

    def leftovers(self) -> list[str]:
        return ([f"mount {m}" for m, _ in self._mounts()] + [f"loop device {d}" for d in self._loops()]
                + [f"qemu-storage-daemon {p}" for p in self._daemons()])

    def cleanup(self) -> list[str]:
        for where, fstype in sorted(self._mounts(), key=lambda m: -len(m[0])):
            if not fstype.startswith("fuse"):
                quiet(["umount", where])
        for device in self._loops():
            quiet(["losetup", "-d", device])
        for pid in self._daemons():
            os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if not self._daemons():
                break
            time.sleep(0.1)
        for pid in self._daemons():
            os.kill(pid, signal.SIGKILL)
        for where, _ in sorted(self._mounts(), key=lambda m: -len(m[0])):
            quiet(["umount", "-l", where])
        for device in self._loops():
            quiet(["losetup", "-d", device])
        left = self.leftovers()
        if self.ceph:
            admin = ["rbd", "--conf", self.ceph["conf"], "--id", "admin", "--keyring", self.ceph["admin_keyring"]]
            images = self._rbd_images()
            for image in images:
                quiet([*admin, "rm", f"{self.ceph['pool']}/{image}"])
            pool = subprocess.run([*admin, "ls", self.ceph["pool"]], capture_output=True, text=True,
                                  check=False).stdout.split()
            left += [f"rbd image {self.ceph['pool']}/{image}" for image in images if image in pool]
        if self.tgtd_pid:
            out = subprocess.run(["tgtadm", "-C", "0", "--lld", "iscsi", "--mode", "target", "--op", "show"],
                                 capture_output=True, text=True, check=False).stdout
            for tid in re.findall(r"^Target (\d+):", out, re.MULTILINE):
                quiet(["tgtadm", "-C", "0", "--lld", "iscsi", "--mode", "target", "--op", "delete",
                                "--force", "--tid", tid])
            quiet(["tgtadm", "-C", "0", "--mode", "system", "--op", "delete"])
            for _ in range(50):
                if not os.path.exists(f"/proc/{self.tgtd_pid}"):
                    break
                time.sleep(0.1)
            else:
                os.kill(self.tgtd_pid, signal.SIGKILL)
        if self.schema:
            import psycopg

            with psycopg.connect(self.pg_admin_url.replace("postgresql+psycopg://", "postgresql://"),
                                 autocommit=True) as db:
                db.execute(f'DROP SCHEMA "{self.schema}" CASCADE')
        if not left:
            shutil.rmtree(self.root, ignore_errors=True)
        return left


def quiet(command: list[str]) -> None:
    subprocess.run(command, capture_output=True, check=False)


def run(command: list[str], sandbox: Sandbox) -> tuple[int, str]:
    proc = subprocess.run(command, cwd=sandbox.work, env=sandbox.env(), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, check=False, timeout=1800)
    if VERBOSE:
        print(proc.stdout)
    return proc.returncode, proc.stdout


def play_text(example: Example, sandbox: Sandbox) -> str:
    text = sandbox.rewrite(example.text)
    if example.kind == "tasks":
        body = "".join("    " + line + "\n" if line.strip() else "\n" for line in text.splitlines())
        text = "- name: Example\n  hosts: localhost\n  gather_facts: false\n  tasks:\n" + body
    return text


def run_once(example: Example, sandbox: Sandbox, number: int) -> tuple[int, str, str]:
    """(exit code, output, a reason the run does not count as unchanged, or '')."""
    for path, text in example.files:
        target = sandbox.rewrite(path) if os.path.isabs(path) else os.path.join(sandbox.work, path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w", encoding="utf-8") as handle:
            handle.write(sandbox.rewrite(text))
    stem = os.path.join(sandbox.root, f"example-{number}")
    if example.kind == "shell":
        with open(stem + ".sh", "w", encoding="utf-8") as handle:
            handle.write(f"PS4='{TRACE}'\nset -ex\n" + sandbox.rewrite(example.text))
        code, out = run(["bash", stem + ".sh"], sandbox)
        return code, out, shell_changes(out)
    with open(stem + ".yml", "w", encoding="utf-8") as handle:
        handle.write(play_text(example, sandbox))
    code, out = run(["ansible-playbook", stem + ".yml", "-e",
                     f"volume_fstab={os.path.join(sandbox.root, 'etc', 'fstab')}"], sandbox)
    changed = [f"{host} changed={n}" for host, n, _, _ in RECAP_RE.findall(out) if int(n)]
    if code == 0 and not RECAP_RE.search(out):
        changed.append("no PLAY RECAP")
    return code, out, ", ".join(changed)


def shell_changes(out: str) -> str:
    """The commands of a shell run that reported a change (not those given --check)."""
    found, command = [], ""
    for line in out.splitlines():
        if line.startswith(TRACE):
            command = line[len(TRACE):]
            continue
        checking = re.search(r"(^|\s)(--check|-C)(\s|$)", command)
        if not checking and (re.search(r"\|\s*CHANGED\b", line) or
                             any(int(n) for _, n, _, _ in RECAP_RE.findall(line))):
            if command not in found:
                found.append(command)
    return "; ".join(f"'{c}' reported a change" for c in found)


def run_example(example: Example, python: str, repo: str) -> tuple[str, str]:
    """('PASS'|'FAIL'|'SKIP', reason)."""
    if example.marker.startswith("skip"):
        return "SKIP", example.marker.split("-", 1)[1].strip() if "-" in example.marker else "marked skip"
    if example.kind == "fragment":
        return "FAIL", "a YAML block that is neither plays nor tasks: show fragments in a plain fence"
    if example.marker and example.marker not in ("after previous", "needs ceph"):
        return "FAIL", f"unknown marker '{example.marker}'"
    chain = [example]
    while chain[0].marker == "after previous":  # the previous example, and what it runs after
        if chain[0].previous is None:
            return "FAIL", "'after previous', but no example before it"
        chain.insert(0, chain[0].previous)
    texts = " ".join(e.text for e in chain)
    sandbox = Sandbox(example, python)
    status, reason = "PASS", ""
    try:
        if PG_URL_RE.search(texts):
            url = os.environ.get("BLOCKSTORE_TEST_PG_URL")
            if not url:
                return "SKIP", "needs PostgreSQL: no BLOCKSTORE_TEST_PG_URL (scripts/test.sh starts one)"
            sandbox.start_postgres(url)
        sandbox.fixtures(texts, repo)
        if any(e.marker == "needs ceph" for e in chain):
            problem = sandbox.use_ceph()
            if problem:
                return "SKIP", problem
        if re.search(r"target:\s*iscsi", texts):
            problem = sandbox.start_tgtd()
            if problem:
                return "SKIP", f"needs tgtd on control port 0: {problem}"
        for number, before in enumerate(chain[:-1]):
            code, out, _ = run_once(before, sandbox, -1 - number)
            if code:
                print(out)
                return "FAIL", f"the example before it ({before.where}), run first, failed (exit {code})"
        for number in (1, 2):
            code, out, changes = run_once(example, sandbox, number)
            if code or (number == 2 and changes):
                print(out)
                status = "FAIL"
                reason = f"run {number} failed (exit {code})" if code else f"run 2 changed something: {changes}"
                break
    finally:
        left = sandbox.cleanup()
        if left:
            status, reason = "FAIL", (reason + "; " if reason else "") + f"left behind under {sandbox.root}: " \
                + ", ".join(left)
    return status, reason


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("repo")
    parser.add_argument("--only", action="append", help="run only examples whose FILE:LINE matches this glob")
    parser.add_argument("--list", action="store_true", help="list the examples, run nothing")
    parser.add_argument("--verbose", action="store_true", help="print the output of every run")
    args = parser.parse_args()
    python = os.environ.get("BLOCKSTORE_EXAMPLES_PYTHON", sys.executable)
    global VERBOSE  # noqa: PLW0603 - one switch for the whole run
    VERBOSE = args.verbose
    failed = 0
    for example in all_examples(args.repo):
        if args.only and not any(fnmatch.fnmatch(example.where, pattern) for pattern in args.only):
            continue
        if args.list:
            print(f"{example.where} {example.kind} {example.marker}".rstrip())
            continue
        print(f"== {example.where} ({example.kind})", flush=True)
        started = time.monotonic()
        try:
            status, reason = run_example(example, python, args.repo)
        except Exception as error:  # one broken example must not hide the others
            status, reason = "FAIL", f"the runner failed: {error!r}"
        failed += status == "FAIL"
        print(f"{status} {example.where}" + (f": {reason}" if reason else "")
              + ("" if status == "SKIP" else f" ({time.monotonic() - started:.0f} s)"), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
