#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: storage_backup
short_description: Back up block storage volumes to a directory, restore and delete backups
version_added: 0.1.0
description:
  - "Copies a volume's data off its backend into a directory (O(target)): a local path or a mounted share on
    the host where the backend's work runs. Restores a backup to a new volume or over an existing one."
  - "A backup is read from a temporary snapshot of the volume (taken, read, deleted), so its data is one
    point in time. A backup of a volume connected to a host is crash-consistent (what a power loss would
    have left): RV(backup.crash_consistent) says so; detach the volume, or quiesce its filesystem, for a
    clean one."
  - "Format, the same for every driver: the image is cut into 4 MiB chunks, each compressed with zlib and
    stored once under the sha256 of its data; a manifest per backup lists its chunks' digests and the
    sha256 of the whole image. All-zero chunks are not stored. An incremental backup
    (O(incremental=true)) builds on the newest backup of the same volume in the same O(target) and stores
    only the chunks that changed since (a block-level difference)."
  - "A restore assembles the image in O(target)'s C(tmp) directory first, verifying every chunk's checksum
    and the whole image's; a missing or altered chunk stops it with an error naming the chunk, before the
    volume is created or written."
  - Backups are records in the same state store as the volumes. Deleting a volume keeps its backups.
  - "Drivers: the file driver (V(raw) and V(qcow2)), needs C(qemu-img) on the host; the rbd driver, needs
    C(qemu-img) with qemu's rbd block driver (Debian: C(qemu-utils) and C(qemu-block-extra)), which reaches
    the cluster with the backend's C(rbd_ceph_conf), C(rbd_user) and C(rbd_keyring_conf) (the keyring's path,
    never the key, is on its command line). An rbd incremental backup reads the whole snapshot and stores the
    chunks that changed (no C(rbd export-diff) yet). Other drivers (V(lvm), V(cinder)) refuse with an error
    naming the driver (C(driver) in O(backend)), before anything is made."
author: blockstore.storage developers (@blockstore)
extends_documentation_fragment:
  - blockstore.storage.backend
  - blockstore.storage.persistence
  - blockstore.storage.attributes
options:
  name:
    description: The backup's name, unique on its backend. With O(id) too, renames the backup.
    type: str
  id:
    description: The backup's id (a UUID).
    type: str
  state:
    description:
      - V(present) makes the backup (once; a re-run with the same name changes nothing).
      - V(absent) deletes it, with the chunks no other backup in its directory uses.
      - V(restored) writes it to the volume O(restore_to).
    type: str
    choices: [present, absent, restored]
    default: present
  volume:
    description: Name or id of the volume to back up. Required to create a backup.
    type: str
  target:
    description:
      - Absolute path of the directory to keep the backup in, on the host where the backend's work runs
        (created if missing). Required to create a backup.
    type: path
  incremental:
    description:
      - Build on the newest available backup of O(volume) in O(target), storing only what changed since.
        Without one, the task fails; take a full backup first.
    type: bool
    default: false
  restore_to:
    description:
      - With O(state=restored), the name of the volume to restore to. A volume of that name that does not
        exist is created, of the backup's size.
      - An existing volume is overwritten only with O(force=true), when it is not connected to any host and
        at least as large as the backup. Without O(force), a volume restored from this backup already is
        left as it is (no change); any other is refused.
    type: str
  force:
    description: Let O(state=restored) overwrite the data of the existing volume O(restore_to).
    type: bool
    default: false
  delete_dependents:
    description:
      - With O(state=absent), delete the incremental backups that depend on this one too. Without it, deleting
        a backup that others depend on is refused.
    type: bool
    default: false
  description:
    description: Free text kept with the backup.
    type: str
seealso:
  - module: blockstore.storage.storage_backup_info
  - module: blockstore.storage.storage_volume
'''

EXAMPLES = r'''
- name: A volume
  blockstore.storage.storage_volume:
    name: data1
    size: 1
    backend: {name: lab, driver: file, path: /var/lib/blockstore/lab, format: qcow2}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}

- name: A full backup of it
  blockstore.storage.storage_backup:
    name: data1-full
    volume: data1
    target: /var/lib/blockstore/backups
    backend: {name: lab, driver: file, path: /var/lib/blockstore/lab, format: qcow2}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}

- name: Tonight's incremental backup, on the newest one
  blockstore.storage.storage_backup:
    name: "data1-{{ now(utc=true, fmt='%Y-%m-%d') }}"
    volume: data1
    target: /var/lib/blockstore/backups
    incremental: true
    backend: {name: lab, driver: file, path: /var/lib/blockstore/lab, format: qcow2}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}

- name: Restore the full backup to a new volume
  blockstore.storage.storage_backup:
    name: data1-full
    state: restored
    restore_to: data1-restored
    backend: {name: lab, driver: file, path: /var/lib/blockstore/lab, format: qcow2}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}

- name: Delete last month's full backup and the incrementals built on it (nothing to do once they are gone)
  blockstore.storage.storage_backup:
    name: data1-last-month
    state: absent
    delete_dependents: true
    backend: {name: lab, driver: file, path: /var/lib/blockstore/lab, format: qcow2}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}
'''

RETURN = r'''
backup:
  description: The backup after the task; after a delete, the deleted backup with status C(deleted).
  returned: success, except when deleting a backup that did not exist
  type: dict
  contains:
    id: {description: The backup's id., type: str, returned: always}
    name: {description: The backup's name., type: str, returned: always}
    backend: {description: Backend name of its volume., type: str, returned: always}
    volume_id: {description: Id of the volume it was taken of (kept when that volume is deleted)., type: str,
                returned: always}
    volume_name: {description: Name of that volume when the backup was taken., type: str, returned: always}
    volume_size: {description: Size in GiB of the volume when the backup was taken., type: int, returned: always}
    location: {description: The directory the backup is in., type: str, returned: always}
    parent_id: {description: Id of the backup an incremental one builds on; null for a full one., type: str,
                returned: always}
    status: {description: "creating, available, deleting, error, error_deleting or deleted.", type: str,
             returned: always}
    crash_consistent: {description: Whether the volume was connected to a host when the backup was taken.,
                       type: bool, returned: always}
    size: {description: Bytes of the volume's image., type: int, returned: always}
    stored_bytes: {description: Bytes of compressed chunks this backup added to its directory., type: int,
                   returned: always}
    description: {description: Free text., type: str, returned: always}
    created_at: {description: ISO 8601 time of creation., type: str, returned: always}
    updated_at: {description: ISO 8601 time of the last change., type: str, returned: always}
chunks:
  description: What taking the backup read and stored.
  returned: when a backup was taken (not in check mode)
  type: dict
  contains:
    chunks: {description: Chunks of the image., type: int, returned: always}
    changed_chunks: {description: "Chunks that differ from the parent's (a full backup: the non-zero ones).",
                     type: int, returned: always}
    written_chunks: {description: Chunks the directory did not hold yet and this backup stored., type: int,
                     returned: always}
volume:
  description: With O(state=restored), the volume restored to, as RV(blockstore.storage.storage_volume#module:volume).
  returned: with O(state=restored)
  type: dict
deleted_dependents:
  description: With O(delete_dependents=true), the backups deleted because they depended on this one.
  returned: when there were any
  type: list
  elements: dict
actions:
  description: What the task did, or in check mode would do, in order.
  returned: always
  type: list
  elements: str
'''

from ansible_collections.blockstore.storage.plugins.module_utils.backups import BACKUP_STATES, BackupResource
from ansible_collections.blockstore.storage.plugins.module_utils.runner import run_module

ARGUMENT_SPEC = {
    "name": {"type": "str"},
    "id": {"type": "str"},
    "state": {"type": "str", "choices": list(BACKUP_STATES), "default": "present"},
    "volume": {"type": "str"},
    "target": {"type": "path"},
    "incremental": {"type": "bool", "default": False},
    "restore_to": {"type": "str"},
    "force": {"type": "bool", "default": False},
    "delete_dependents": {"type": "bool", "default": False},
    "description": {"type": "str"},
}
HANDLER = BackupResource


def main() -> None:
    run_module(HANDLER, ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
