# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The LVM commands the lvm driver runs, and the reading of their JSON reports.

Every command is an argument list run through commands.run; reports come from
`lvs`/`vgs --reportformat json --units b --nosuffix`, so sizes are whole bytes.
"""

from __future__ import annotations

import json
from typing import Sequence

from ...commands import CompletedProcess, run
from ...errors import DriverError, MissingDependency

# The report fields read, and which of them are numbers (bytes or counts).
VG_FIELDS = ("vg_name", "vg_size", "vg_free", "vg_extent_size", "vg_extent_count", "vg_free_count")
LV_FIELDS = ("lv_name", "lv_size", "lv_attr", "segtype", "pool_lv", "origin", "origin_size", "data_percent")
_NUMBERS = {"vg_size", "vg_free", "vg_extent_size", "vg_extent_count", "vg_free_count", "lv_size", "origin_size"}


def extents_for(size_bytes: int, extent_size: int) -> int:
    """Extents holding `size_bytes`, rounded up (LVM allocates whole extents)."""
    return -(-size_bytes // extent_size)


def parse_report(text: str, kind: str) -> list[dict]:
    """The rows of an `lvs`/`vgs --reportformat json` report ("lv" or "vg"), numbers as int."""
    try:
        reports = json.loads(text)["report"]
    except (ValueError, KeyError, TypeError):
        raise DriverError(f"lvm driver: cannot read the {kind}s report: {text[:200]!r}") from None
    rows = []
    for report in reports:
        for row in report.get(kind, []):
            rows.append({k: (int(v) if k in _NUMBERS and v != "" else v) for k, v in row.items()})
    return rows


def data_percent(row: dict) -> float | None:
    """A thin LV's or pool's used share (lvs data_percent, "12.50"); None when LVM reports none."""
    try:
        return float(str(row.get("data_percent", "")).replace(",", "."))
    except ValueError:
        return None


def is_thin(row: dict) -> bool:
    return row.get("segtype") == "thin"


def virtual_size(row: dict) -> int:
    """The bytes an LV's device shows: a COW snapshot's lv_size is its COW area, its device its origin's size."""
    if row.get("lv_attr", "")[:1] in ("s", "S") and row.get("origin_size"):
        return row["origin_size"]
    return row["lv_size"]


def is_active(row: dict) -> bool:
    """The LV has a device (lv_attr's 5th character)."""
    attr = row.get("lv_attr", "")
    return len(attr) > 4 and attr[4] == "a"


def is_open(row: dict) -> bool:
    """The LV's device is held open (mounted, attached, exported): lv_attr's 6th character."""
    attr = row.get("lv_attr", "")
    return len(attr) > 5 and attr[5] == "o"


def _started(argv: Sequence[str]) -> CompletedProcess:
    try:
        return run(argv)
    except FileNotFoundError:
        raise MissingDependency(f"lvm driver: {argv[0]} is not installed on this host (Debian/Ubuntu: apt-get "
                                "install lvm2 thin-provisioning-tools; RHEL: dnf install lvm2)", "lvm2") from None


class Lvm:
    """One volume group's commands."""

    def __init__(self, vg: str) -> None:
        self.vg = vg

    def _run(self, argv: Sequence[str], doing: str, option: str | None = None) -> str:
        done = _started(argv)
        if done.returncode != 0:
            raise DriverError(f"lvm driver: {doing} failed: {(done.stderr or done.stdout).strip()}", option)
        return done.stdout

    def path(self, lv: str) -> str:
        return f"/dev/{self.vg}/{lv}"

    # reports ------------------------------------------------------------
    def vg_report(self) -> dict | None:
        """The volume group's row, or None when the host has no such volume group."""
        done = _started(["vgs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", ",".join(VG_FIELDS)])
        if done.returncode != 0:
            raise DriverError(f"lvm driver: listing volume groups failed: {done.stderr.strip()}",
                              "backend.volume_group")
        rows = {r["vg_name"]: r for r in parse_report(done.stdout, "vg")}
        return rows.get(self.vg)

    def vg_names(self) -> list[str]:
        out = self._run(["vgs", "--reportformat", "json", "-o", "vg_name"], "listing volume groups")
        return sorted(r["vg_name"] for r in parse_report(out, "vg"))

    def lvs(self) -> dict[str, dict]:
        """Every LV of the volume group, by name."""
        out = self._run(["lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-a",
                         "-o", ",".join(LV_FIELDS), self.vg], f"listing the LVs of {self.vg}")
        # Hidden LVs ([pool_tdata]) are shown bracketed: they are LVM's, never ours.
        return {r["lv_name"]: r for r in parse_report(out, "lv") if not r["lv_name"].startswith("[")}

    def lv(self, name: str) -> dict | None:
        return self.lvs().get(name)

    # changes ------------------------------------------------------------
    def create(self, name: str, size_bytes: int, pool: str | None) -> None:
        """A thick LV of `size_bytes` (whole extents), or a thin LV of that virtual size in `pool`."""
        if pool:
            # A thin LV's virtual size is free to pass the pool's: that is thin provisioning.
            argv = ["lvcreate", "--yes", "-n", name, "-V", f"{size_bytes}b", "-T", f"{self.vg}/{pool}"]
        else:
            argv = ["lvcreate", "--yes", "-n", name, "-L", f"{size_bytes}b", self.vg]
        self._run(argv, f"creating LV {name}")

    def snapshot(self, origin: str, name: str, cow_bytes: int | None) -> None:
        """A snapshot LV of `origin`: a thin snapshot (cow_bytes None), active at once, or a COW snapshot."""
        argv = ["lvcreate", "--yes", "-s", "-n", name]
        argv += ["-kn"] if cow_bytes is None else ["-L", f"{cow_bytes}b"]
        self._run([*argv, f"{self.vg}/{origin}"], f"creating snapshot LV {name} of {origin}")

    def extend(self, name: str, size_bytes: int) -> None:
        self._run(["lvextend", "-L", f"{size_bytes}b", f"{self.vg}/{name}"], f"extending LV {name}")

    def activate(self, name: str, active: bool) -> None:
        self._run(["lvchange", "-ay" if active else "-an", f"{self.vg}/{name}"],
                  f"{'activating' if active else 'deactivating'} LV {name}")

    def rename(self, old: str, new: str) -> None:
        self._run(["lvrename", self.vg, old, new], f"renaming LV {old} to {new}")

    def remove(self, name: str) -> None:
        self._run(["lvremove", "--yes", f"{self.vg}/{name}"], f"removing LV {name}")

    def merge(self, snapshot: str) -> None:
        """Merge a snapshot into its origin (the snapshot LV is consumed); waits until done."""
        self._run(["lvconvert", "--merge", f"{self.vg}/{snapshot}"], f"merging snapshot LV {snapshot}", "revert_to")

    def copy(self, source: str, target: str, size_bytes: int, sparse: bool) -> None:
        """Copy the first `size_bytes` of one LV's data onto another, bypassing the page cache. `sparse` skips
        zero blocks: only for a thin target, whose unwritten blocks read as zeros (a thick one holds old data)."""
        self._run(["dd", f"if={self.path(source)}", f"of={self.path(target)}", "bs=1M", f"count={size_bytes}",
                   "iflag=direct,count_bytes", "oflag=direct",
                   "conv=fdatasync,sparse" if sparse else "conv=fdatasync", "status=none"],
                  f"copying LV {source} to {target}")

    def zero(self, name: str, size_bytes: int) -> None:
        """Overwrite the first `size_bytes` of an LV with zeros (volume_clear)."""
        self._run(["dd", "if=/dev/zero", f"of={self.path(name)}", "bs=1M", f"count={size_bytes}",
                   "iflag=count_bytes", "oflag=direct", "conv=fdatasync", "status=none"], f"clearing LV {name}")
