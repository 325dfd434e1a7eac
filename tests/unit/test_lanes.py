# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""scripts/lanes.sh, the background lanes of scripts/test.sh (storage_guest beside the other targets, the guest
lab's boot): a lane that ends is waited for with its exit code and its output, and stopping one (an interrupted
run) stops everything it started, so nothing is left running (a target's runme.sh with its guests)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LANES = os.path.join(REPO, "scripts", "lanes.sh")
MARKER = "blockstore-lane-test-sleeper"


def run_bash(script: str, cwd: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", f". {LANES}\n{script}"], cwd=cwd, capture_output=True, text=True,
                          check=False, timeout=60)


def sleepers(tmp_path) -> list[int]:
    """The stand-in processes of this test still running (their command line names the test's directory)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                cmdline = handle.read().decode("utf-8", "replace")
        except OSError:
            continue
        if MARKER in cmdline and str(tmp_path) in cmdline:
            found.append(int(pid))
    return found


def test_a_lane_that_ends_gives_its_exit_code_and_output(tmp_path):
    done = run_bash(f'lane_start {tmp_path} {tmp_path}/lane.log bash -c "echo from the lane; exit 3"\n'
                    'rc=0; wait "$lane_pid" || rc=$?; echo "rc=$rc"', str(tmp_path))
    assert done.stdout.strip() == "rc=3"
    assert (tmp_path / "lane.log").read_text() == "from the lane\n"


def test_stopping_a_lane_stops_what_its_command_started(tmp_path):
    # ansible-test as it runs a script target: a Python process whose child runme.sh runs a long step
    # (ansible-playbook against the guests) and takes its lab down when it ends.
    (tmp_path / "ansible_test.py").write_text(
        "import subprocess, sys\nsys.exit(subprocess.call(['bash', 'runme.sh']))\n")
    (tmp_path / "runme.sh").write_text(
        "trap 'echo down >down' EXIT\n"
        f"python3 -c 'import time; open(\"started\", \"w\").close(); time.sleep(300)' {MARKER} {tmp_path}\n")
    try:
        done = run_bash(f"lane_start {tmp_path} {tmp_path}/lane.log python3 ansible_test.py\n"
                        'for _ in $(seq 200); do [ -e started ] && break; sleep 0.1; done\n'
                        '[ -e started ] || { echo "the lane did not start"; exit 1; }\n'
                        'lane_stop "$lane_pid"; wait "$lane_pid"; echo stopped', str(tmp_path))
        assert done.stdout.strip().endswith("stopped"), done
        deadline = time.monotonic() + 10
        while sleepers(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sleepers(tmp_path) == [], "a process the lane started is still running"
        assert (tmp_path / "down").exists(), "runme.sh did not take its lab down"
    finally:
        for pid in sleepers(tmp_path):
            os.kill(pid, signal.SIGKILL)
