# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers shared by the benchmarks in bench/ (not part of the collection).

Every benchmark prints ratios against a baseline measured in the same run, with
baseline and subject runs interleaved and repeated, and reports medians: the
machines these run on are shared and noisy, so an absolute time means little.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, Sequence

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.dirname(sys.executable)


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def header(title: str) -> None:
    """What ran where: the machine, its load, the tools."""
    print(f"== {title}")
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
          f"{platform.system()} {platform.release()}; Python {platform.python_version()}")
    try:
        ansible = subprocess.run([os.path.join(VENV_BIN, "ansible"), "--version"], capture_output=True,
                                 text=True, check=False).stdout.splitlines()[0]
    except (OSError, IndexError):
        ansible = "ansible: not found"
    print(f"{ansible}; checkout {git_head()}")
    print(f"load average at start: {load()}")
    sys.stdout.flush()


def git_head() -> str:
    result = subprocess.run(["git", "-C", REPO, "log", "-1", "--format=%h"], capture_output=True, text=True,
                            check=False)
    dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no", "plugins"],
                           capture_output=True, text=True, check=False).stdout.strip()
    return result.stdout.strip() + (" (plugins/ modified)" if dirty else "")


def workdir(name: str) -> str:
    """A fresh directory for one benchmark run (kept when BENCH_KEEP=1)."""
    base = os.environ.get("BENCH_TMP") or tempfile.gettempdir()
    return tempfile.mkdtemp(prefix=f"blockstore-bench-{name}-", dir=base)


def cleanup(path: str) -> None:
    if os.environ.get("BENCH_KEEP") == "1":
        print(f"kept {path}")
    else:
        shutil.rmtree(path, ignore_errors=True)


def collection_tree(work: str) -> str:
    """This checkout's collection in an ansible_collections tree of its own (what is on disk now)."""
    root = os.path.join(work, "collections")
    dest = os.path.join(root, "ansible_collections", "blockstore", "storage")
    os.makedirs(dest)
    for part in ("plugins", "meta", "galaxy.yml"):
        source = os.path.join(REPO, part)
        if os.path.isdir(source):
            shutil.copytree(source, os.path.join(dest, part),
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(source, dest)
    return root


def ansible_env(work: str, collections: str) -> dict:
    """Environment for ansible-playbook runs that share nothing with other users of this machine."""
    env = dict(os.environ)
    for key in [k for k in env if k.startswith("ANSIBLE_")]:
        del env[key]
    os.makedirs(os.path.join(work, "ansible-local"), exist_ok=True)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": collections,
        "ANSIBLE_LOCAL_TEMP": os.path.join(work, "ansible-local"),
        "ANSIBLE_REMOTE_TMP": os.path.join(work, "ansible-remote"),
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        "ANSIBLE_RETRY_FILES_ENABLED": "false",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "PATH": VENV_BIN + os.pathsep + env.get("PATH", ""),
    })
    return env


def playbook(path: str, env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    command = [os.path.join(VENV_BIN, "ansible-playbook"), *args, path]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}")
    return result


def timed(run: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of every process it started and waited for)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    run()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def interleave(subjects: dict[str, Callable[[], object]], rounds: int,
               measure: Callable[[Callable[[], object]], Sequence[float]] = timed) -> dict[str, list[tuple]]:
    """Run every subject once per round, in a rotating order; returns each subject's samples."""
    samples: dict[str, list[tuple]] = {name: [] for name in subjects}
    names = list(subjects)
    for round_no in range(rounds):
        order = names[round_no % len(names):] + names[:round_no % len(names)]
        for name in order:
            samples[name].append(tuple(measure(subjects[name])))
        print(f"  round {round_no + 1}/{rounds} done (load {load()})", file=sys.stderr)
    return samples


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def spread(values: Sequence[float]) -> str:
    """Median and the range, for showing how noisy a figure was."""
    return f"{median(values):.3f} (min {min(values):.3f}, max {max(values):.3f}, n={len(values)})"


def verdict(value: float, limit: float, higher_is_better: bool = False) -> str:
    ok = value >= limit if higher_is_better else value <= limit
    return "PASS" if ok else "FAIL"


def write_json(path: str | None, data: dict) -> None:
    if path:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
