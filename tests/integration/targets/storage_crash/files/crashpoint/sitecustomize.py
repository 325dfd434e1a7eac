# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test hook: kill -9 a module process at its N-th storage step. Not part of the collection.

A crash test puts this directory on PYTHONPATH and sets BLOCKSTORE_TEST_CRASH for one task;
Python imports `sitecustomize` at start-up, so the module process installs the hook before
any collection code runs, and no production code path knows about it.

    BLOCKSTORE_TEST_CRASH='{"log": "/tmp/x/steps.log", "kill": {"step": "os.rename volume-<id>.tmp, volume-<id>",
                                                              "occurrence": 1}}'

A *step* is anything the driver or host-side code (module_utils/drivers/*,
module_utils/connectors/*) does that changes something, seen through Python's audit
hooks (files opened for writing, renamed, removed, truncated, linked, chmod'ed, reflinked;
commands started; a daemon's control socket connected to; directories made are not steps:
whether there is one to make depends on what ran before), plus, for the rbd driver (librbd
is C: no audit events), every line of drivers/rbd/ that calls a mutating librbd function,
plus the return of the outermost driver or connector call that changes something
(create_volume, attach...: the work is done, the module has not answered).

Steps are described with ids and device numbers replaced (`volume-<id>`, `/dev/loop<n>`), so the
same task on other objects has the same steps. `at: 0` records: one line per step in `log`,
`step N OCCURRENCE DESCRIPTION`. `kill: {step, occurrence}` kills the process with SIGKILL right
before that occurrence of that step (`at: N`: before the N-th step), after writing
"kill N OCCURRENCE DESCRIPTION" to `log`: no finally block, no atexit, no result - what the
kernel's OOM killer or a kill -9 from outside leaves. Steps taken while the module gathers the
host's connector properties (os-brick reading the host) are not counted. With `pause: FILE`
the process writes its pid to FILE at step N and waits, for the test to kill it (and the
controller around it) from outside. `watch` replaces the regular expression that names the
code whose steps count (the controller's store: "/module_utils/persistence/").
"""

import json
import linecache
import os
import re
import signal
import sys
import time

PLAN = json.loads(os.environ.get("BLOCKSTORE_TEST_CRASH") or "null") or {}
WATCHED = re.compile(PLAN.get("watch") or r"/module_utils/(drivers|connectors)/")
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
MUTATING_EVENTS = ("os.rename", "os.remove", "os.truncate", "os.chmod", "os.rmdir", "os.link", "os.symlink",
                   "shutil.rmtree", "fcntl.ioctl", "subprocess.Popen", "socket.connect")
NOT_STEPS = ("host_properties",)  # reading the host's facts
NORMALIZE = ((re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<id>"),
             (re.compile(r"/dev/loop[0-9]+"), "/dev/loop<n>"),
             # commands name a loop device by its basename (`losetup --detach loop2`): its number depends on what
             # else holds loop devices, so it differs between the run that lists the steps and the one killed
             (re.compile(r"\bloop[0-9]+\b"), "loop<n>"),
             (re.compile(r"\.(state|key)-[A-Za-z0-9_]+"), r".\1-<tmp>"),
             # the dead-export watchdog's command line names its daemon's pid, another one every run
             (re.compile(r"(blockstore-watchdog) [0-9]+"), r"\1 <pid>"))
# librbd calls of drivers/rbd/ that change the cluster.
RBD_MUTATIONS = re.compile(r"\.(create|clone|remove|rename|create_snap|remove_snap|protect_snap|unprotect_snap|"
                           r"resize|flatten|copy|rollback_to_snap)\(")
RBD_FILES = re.compile(r"/drivers/rbd(\.py|/\w+\.py)$")
# Public driver and host-side calls that change something: their return is a step too.
ENTRIES = ("create_volume", "create_volume_from_snapshot", "create_cloned_volume", "extend_volume", "delete_volume",
           "create_snapshot", "delete_snapshot", "revert_to_snapshot", "initialize_connection",
           "terminate_connection", "attach", "detach", "grow", "disconnect_volume")
STATE = {"count": 0, "busy": False, "seen": {}}


def step(description):
    if STATE["busy"]:
        return
    STATE["busy"] = True
    try:
        for pattern, replacement in NORMALIZE:
            description = pattern.sub(replacement, description)
        description = description.strip()
        STATE["count"] += 1
        occurrence = STATE["seen"][description] = STATE["seen"].get(description, 0) + 1
        target = PLAN.get("kill") or {}
        killing = STATE["count"] == PLAN.get("at") or (
            target.get("step") == description and target.get("occurrence") == occurrence)
        if PLAN.get("at") == 0 or killing:
            with open(PLAN["log"], "a", encoding="utf-8") as log:
                log.write(f"{'kill' if killing else 'step'} {STATE['count']} {occurrence} {description}\n")
                log.flush()
                os.fsync(log.fileno())
        if killing and PLAN.get("pause"):
            # Stop here and let the test kill the process (and its parents) from outside.
            with open(PLAN["pause"], "w", encoding="utf-8") as marker:
                marker.write(str(os.getpid()))
            time.sleep(300)
        elif killing:
            os.kill(os.getpid(), signal.SIGKILL)
    finally:
        STATE["busy"] = False


def in_watched_code():
    frame = sys._getframe(2)
    watched = False
    while frame is not None:
        if frame.f_code.co_name in NOT_STEPS:
            return False
        watched = watched or bool(WATCHED.search(frame.f_code.co_filename))
        frame = frame.f_back
    return watched


def short(value):
    text = str(value)
    return text if len(text) < 160 else text[:157] + "..."


def audit(event, args):
    if STATE["busy"]:
        return
    if event == "open":
        path, mode, flags = [*args, None, None, 0][:3]
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or \
            (isinstance(flags, int) and flags & WRITE_FLAGS)
        if not writing or not isinstance(path, (str, bytes)):
            return
        description = f"open {os.path.basename(str(path))} for writing"
    elif event in MUTATING_EVENTS:
        if event == "subprocess.Popen":
            argv = args[1] if len(args) > 1 and isinstance(args[1], (list, tuple)) else [args[0]]
            description = "run " + short(" ".join(os.path.basename(str(a)) if str(a).startswith("/") else str(a)
                                                  for a in argv[:5]))
        else:
            description = f"{event} " + short(", ".join(os.path.basename(str(a)) for a in args[:2]
                                                        if isinstance(a, (str, bytes))))
    else:
        return
    if in_watched_code():
        step(description)


def is_public_entry(frame):
    """The outermost public call into driver or host-side code (its caller is outside them)."""
    caller = frame.f_back
    return frame.f_code.co_name in ENTRIES and caller is not None and not WATCHED.search(caller.f_code.co_filename)


def tracer(frame, event, arg):
    filename = frame.f_code.co_filename
    if event != "call" or not WATCHED.search(filename):
        return None
    entry = is_public_entry(frame)
    rbd = RBD_FILES.search(filename) is not None
    if not entry and not rbd:
        return None

    def local(frame, event, arg):
        if event == "line" and rbd:
            line = linecache.getline(frame.f_code.co_filename, frame.f_lineno, frame.f_globals)
            if RBD_MUTATIONS.search(line) and not line.lstrip().startswith(("#", "def ", "return self._rbd.Image")) \
                    and in_watched_code():
                step(f"rbd: {short(line.strip())}")
        elif event == "return" and entry and in_watched_code():
            step(f"return from {frame.f_code.co_name}")
        return local
    return local


if PLAN.get("log"):
    sys.addaudithook(audit)
    sys.settrace(tracer)
