# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Snapshot and clone time against volume size, per backend.

    .venv/bin/python bench/snapshot_clone.py [--backends qcow2,xfs-reflink,ext4-copy,rbd] [--rounds 5]

Two volumes per backend: 1 GiB holding 100 MiB of data, and 10 GiB holding 1 GiB
(the same 10% filled, in --pieces pieces (default 100) spread over the volume,
flushed to disk; the same number of pieces, because a reflink's cost follows the
number of a file's extents: try --pieces 1024 to see that).
Every round takes a snapshot and makes a clone of each volume, in a rotating order,
through the drivers the modules use (the storage operation alone, no Ansible); the
snapshot and clone are deleted again untimed. Reported: median times and the ratio
10 GiB / 1 GiB measured in the same run. Target (issue 7): at most 2x on qcow2, on
a reflink-capable filesystem (XFS reflink=1 on a loop device) and on Ceph RBD;
the full-copy fallback (raw files on ext4) is reported, not judged.
- qcow2 and ext4-copy use a directory under $BENCH_TMP (default /tmp), here ext4;
- xfs-reflink makes a 16 GiB sparse file, formats it XFS with reflink=1 and mounts
  it through a loop device (root needed), removed at the end;
- rbd uses the shared test cluster (tests/utils/ceph.sh start: reused if running,
  never stopped here) and a pool of its own, deleted at the end. Ceph's Python
  bindings load only in the distribution's Python: this part runs in
  $BLOCKSTORE_RBD_PYTHON (default .venv-rbd/bin/python, scripts/setup-ceph.sh).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import REPO, cleanup, header, load, median, verdict, workdir

TARGET = 2.0
MiB = 1024 * 1024
GiB = 1024 * MiB
SIZES = ((1, 100), (10, 1024))  # (GiB, MiB of data)
BACKENDS = ("qcow2", "xfs-reflink", "ext4-copy", "rbd")


def import_core(work: str):
    root = os.path.join(work, "collections")
    os.makedirs(os.path.join(root, "ansible_collections", "blockstore"), exist_ok=True)
    link = os.path.join(root, "ansible_collections", "blockstore", "storage")
    if not os.path.exists(link):
        os.symlink(REPO, link)
    sys.path.insert(0, root)
    from ansible_collections.blockstore.storage.plugins.module_utils import drivers, objects
    return drivers, objects


SETTINGS = {"pieces": 100}  # the data is written in this many pieces, spread evenly (--pieces)


def pieces(size_gib: int, data_mib: int) -> list[tuple[int, int]]:
    """(offset, length) of the pieces of data: SETTINGS["pieces"] of them, spread evenly over the volume.

    The same number of pieces in both volumes: a reflink's cost follows the number of
    extents (fragments) of a file, so this compares volume size and amount of data alone.
    """
    count = SETTINGS["pieces"]
    step = size_gib * GiB // count
    return [(n * step, data_mib * MiB // count) for n in range(count)]


def fill_file(path: str, size_gib: int, data_mib: int) -> None:
    with open(path, "r+b") as handle:
        for offset, length in pieces(size_gib, data_mib):
            handle.seek(offset)
            handle.write((b"blockstore" * (length // 10 + 1))[:length])
        handle.flush()
        os.fsync(handle.fileno())


def fill_qcow2(path: str, size_gib: int, data_mib: int) -> None:
    commands = []
    for offset, length in pieces(size_gib, data_mib):
        commands += ["-c", f"write -q -P 0x5a {offset} {length}"]
    subprocess.run(["qemu-io", "-f", "qcow2", *commands, path], check=True, stdout=subprocess.DEVNULL)


class Backend:
    """One driver, its two volumes, and the timed operations on them."""

    def __init__(self, core, name: str, options: dict, filler) -> None:
        drivers, self.objects = core
        self.name = name
        self.driver = drivers.build_driver({"name": f"bench-{name}", **options})
        self.driver.check_setup()  # as a module does before its first change: tools, directory
        self.filler = filler
        self.volumes = {}
        self.times: dict[tuple[int, str], list[float]] = {}
        for size_gib, data_mib in SIZES:
            volume = self.objects.Volume(id=str(uuid.uuid4()), name=f"v{size_gib}", backend=self.driver.backend_name,
                                         size=size_gib, status="creating")
            volume.driver_data = self.driver.create_volume(volume)
            volume.status = "available"
            filler(self, volume, size_gib, data_mib)
            self.volumes[size_gib] = volume

    def round(self, size_gib: int) -> None:
        volume = self.volumes[size_gib]
        snapshot = self.objects.Snapshot(id=str(uuid.uuid4()), name="s", backend=self.driver.backend_name,
                                         volume_id=volume.id, volume_size=volume.size, status="creating")
        started = time.perf_counter()
        snapshot.driver_data, volume.driver_data = self.driver.create_snapshot(snapshot, volume)
        self.times.setdefault((size_gib, "snapshot"), []).append(time.perf_counter() - started)
        snapshot.status = "available"
        clone = self.objects.Volume(id=str(uuid.uuid4()), name="c", backend=self.driver.backend_name,
                                    size=volume.size, status="creating", source_volume_id=volume.id)
        started = time.perf_counter()
        clone.driver_data, volume.driver_data = self.driver.create_cloned_volume(clone, volume)
        self.times.setdefault((size_gib, "clone"), []).append(time.perf_counter() - started)
        clone.status = "available"
        self.driver.delete_volume(clone)
        self.driver.delete_snapshot(snapshot)

    def close(self) -> None:
        for volume in self.volumes.values():
            with contextlib.suppress(Exception):
                self.driver.delete_volume(volume)


def file_filler(backend: Backend, volume, size_gib: int, data_mib: int) -> None:
    path = backend.driver.volume_path(volume)
    if backend.driver.conf["format"] == "qcow2":
        fill_qcow2(path, size_gib, data_mib)
    else:
        fill_file(path, size_gib, data_mib)


def rbd_filler(backend: Backend, volume, size_gib: int, data_mib: int) -> None:
    import rados
    import rbd
    conf = backend.driver.conf
    with rados.Rados(conffile=conf["rbd_ceph_conf"], rados_id=conf["rbd_user"],
                     conf={"keyring": conf["rbd_keyring_conf"]}) as cluster, \
            cluster.open_ioctx(conf["rbd_pool"]) as ioctx, rbd.Image(ioctx, f"volume-{volume.id}") as image:
        for offset, length in pieces(size_gib, data_mib):
            for start in range(0, length, 4 * MiB):
                chunk = min(4 * MiB, length - start)
                image.write((b"blockstore" * (chunk // 10 + 1))[:chunk], offset + start)
        image.flush()


@contextlib.contextmanager
def xfs_mount(work: str):
    image, mount = os.path.join(work, "xfs.img"), os.path.join(work, "xfs")
    os.makedirs(mount)
    with open(image, "wb") as handle:
        handle.truncate(16 * GiB)
    subprocess.run(["mkfs.xfs", "-q", "-m", "reflink=1", image], check=True)
    subprocess.run(["mount", "-o", "loop", image, mount], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", mount], check=False)
        with contextlib.suppress(OSError):
            os.unlink(image)


@contextlib.contextmanager
def ceph_pool():
    """A pool of this run's own on the shared test cluster; yields the driver options."""
    script = os.path.join(REPO, "tests", "utils", "ceph.sh")
    # A holder that is this process: the cluster may be stopped by its other users once we are gone.
    env = {**os.environ, "BLOCKSTORE_CEPH_HOLDER": str(os.getpid())}
    subprocess.run(["bash", script, "start"], env=env, check=True, stdout=subprocess.DEVNULL)
    exports = subprocess.run(["bash", script, "env"], env=env, check=True, capture_output=True, text=True).stdout
    settings = dict(line.removeprefix("export ").split("=", 1) for line in exports.splitlines() if "=" in line)
    conf, keyring = settings["BLOCKSTORE_TEST_CEPH_CONF"], settings["BLOCKSTORE_TEST_CEPH_ADMIN_KEYRING"]
    pool = f"bench-{os.getpid()}"
    ceph = ["ceph", "--conf", conf, "--name", "client.admin", "--keyring", keyring]
    subprocess.run([*ceph, "osd", "pool", "create", pool, "8", "8"], check=True, capture_output=True)
    try:
        subprocess.run([*ceph, "osd", "pool", "application", "enable", pool, "rbd"], check=True, capture_output=True)
        subprocess.run(["rbd", "--conf", conf, "--name", "client.admin", "--keyring", keyring, "pool", "init", pool],
                       check=True, capture_output=True)
        yield {"driver": "rbd", "rbd_pool": pool, "rbd_ceph_conf": conf, "rbd_user": "admin",
               "rbd_keyring_conf": keyring}
    finally:
        subprocess.run([*ceph, "osd", "pool", "delete", pool, pool, "--yes-i-really-really-mean-it"],
                       check=False, capture_output=True)


def run_backends(names: list[str], rounds: int, work: str) -> dict:
    core = import_core(work)
    results = {}
    with contextlib.ExitStack() as stack:
        backends = []
        for name in names:
            if name == "qcow2":
                options = {"driver": "file", "path": os.path.join(work, "qcow2"), "format": "qcow2"}
                backends.append(Backend(core, name, options, file_filler))
            elif name == "ext4-copy":
                options = {"driver": "file", "path": os.path.join(work, "raw"), "format": "raw", "reflink": "never"}
                backends.append(Backend(core, name, options, file_filler))
            elif name == "xfs-reflink":
                mount = stack.enter_context(xfs_mount(work))
                options = {"driver": "file", "path": os.path.join(mount, "raw"), "format": "raw", "reflink": "always"}
                backends.append(Backend(core, name, options, file_filler))
            elif name == "rbd":
                backends.append(Backend(core, name, stack.enter_context(ceph_pool()), rbd_filler))
            stack.callback(backends[-1].close)
            print(f"  {name}: volumes made and filled (load {load()})", file=sys.stderr)
        for round_no in range(rounds):
            for backend in backends:
                sizes = [s for s, _d in SIZES]
                for size in sizes[round_no % 2:] + sizes[:round_no % 2]:
                    backend.round(size)
            print(f"  round {round_no + 1}/{rounds} done (load {load()})", file=sys.stderr)
        for backend in backends:
            results[backend.name] = {f"{size}:{op}": values for (size, op), values in backend.times.items()}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pieces", type=int, default=SETTINGS["pieces"],
                        help="pieces the data of each volume is written in")
    parser.add_argument("--json-out", help=argparse.SUPPRESS)  # the rbd part, run in the rbd Python
    args = parser.parse_args()
    names = args.backends.split(",")
    SETTINGS["pieces"] = args.pieces
    work = workdir("snapshot-clone")
    try:
        if args.json_out:
            with open(args.json_out, "w", encoding="utf-8") as handle:
                json.dump(run_backends(names, args.rounds, work), handle)
            return
        header(f"snapshot and clone, 1 GiB (100 MiB data) and 10 GiB (1 GiB data), each in {args.pieces} pieces, "
               f"{args.rounds} rounds")
        here = [n for n in names if n != "rbd"]
        results = run_backends(here, args.rounds, work) if here else {}
        if "rbd" in names:
            python = os.environ.get("BLOCKSTORE_RBD_PYTHON") or os.path.join(REPO, ".venv-rbd", "bin", "python")
            out = os.path.join(work, "rbd.json")
            subprocess.run([python, os.path.abspath(__file__), "--backends", "rbd", "--rounds", str(args.rounds),
                            "--pieces", str(args.pieces), "--json-out", out], check=True)
            with open(out, encoding="utf-8") as handle:
                results.update(json.load(handle))
        report(results, names)
    finally:
        cleanup(work)


def report(results: dict, names: list[str]) -> None:
    print("\nmedian seconds (n) and ratio 10 GiB / 1 GiB")
    print(f"  {'backend':12s} {'operation':9s} {'1 GiB':>14s} {'10 GiB':>14s} {'ratio':>7s}")
    for name in names:
        for op in ("snapshot", "clone"):
            small, large = results[name][f"1:{op}"], results[name][f"10:{op}"]
            ratio = median(large) / median(small)
            judged = "(full copy: reported, not judged)" if name == "ext4-copy" else \
                f"target <= {TARGET}: {verdict(ratio, TARGET)}"
            print(f"  {name:12s} {op:9s} {median(small):9.4f} ({len(small)}) {median(large):9.4f} ({len(large)}) "
                  f"{ratio:7.2f}  {judged}")
    print(f"load average at end: {load()}")


if __name__ == "__main__":
    main()
