#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: storage_snapshot
short_description: Create, rename and delete snapshots of block storage volumes
version_added: 0.1.0
description:
  - Manages a point-in-time snapshot of a volume. Volumes can later be made from it with
    M(blockstore.storage.storage_volume) and O(blockstore.storage.storage_volume#module:source.snapshot).
  - "Deleting a snapshot that volumes were made from follows the driver's rules. File driver, V(raw):
    always allowed, snapshots are independent copies. File driver, V(qcow2): allowed; its data is merged
    into its only dependent image, or the image is kept hidden until the last volume made from it is deleted.
    Driver C(rbd): allowed; the volumes made from the snapshot are flattened first (each gets a full copy of
    the data it shared with the snapshot, which takes time and space in proportion), then the snapshot is deleted."
author: blockstore.storage developers (@blockstore)
extends_documentation_fragment:
  - blockstore.storage.backend
  - blockstore.storage.persistence
  - blockstore.storage.attributes
options:
  volume:
    description:
      - Name or id of the volume to snapshot. Required to create a snapshot; when given for an existing
        snapshot, it must be that snapshot's volume.
    type: str
  name:
    description:
      - The snapshot's name, unique on its backend. With O(id) too, renames the snapshot.
    type: str
  id:
    description: The snapshot's id (a UUID).
    type: str
  state:
    description: Whether the snapshot exists.
    type: str
    choices: [present, absent]
    default: present
  description:
    description: Free text kept with the snapshot.
    type: str
  metadata:
    description: Key/value pairs kept with the snapshot; replaces the whole dict when given.
    type: dict
  retention:
    description:
      - Prune the snapshots of O(volume) that this retention no longer keeps, after taking the task's
        snapshot (O(name)); without O(name) and O(id), only prune. Needs O(volume) and O(state=present).
      - Only snapshots of O(volume) whose names start with O(retention.prefix) are counted and may be pruned;
        snapshots named otherwise (made by hand, by another schedule) are never touched. The task's snapshot
        must start with the prefix too.
      - A snapshot is pruned only when no rule keeps it. With both rules, O(retention.keep) is a floor (the
        newest N stay even when older than O(retention.max_age)) and every snapshot younger than
        O(retention.max_age) stays even beyond the newest N.
      - "Never pruned, whatever the rules, and listed in RV(kept) with the reason: the task's own snapshot; a
        snapshot that is not C(available) (a task on it is unfinished); one that volumes made from it still
        share data with (file driver V(qcow2), C(rbd), C(cinder); with V(raw) volumes are independent copies).
        Delete or flatten those volumes first, or delete the snapshot with O(state=absent). A member of a group
        snapshot (see O(group)), which is deleted with its group."
      - Ages are measured from the snapshot's C(created_at) to the time the task runs.
    type: dict
    suboptions:
      prefix:
        description: Start of the names of the snapshots retention counts and may prune, for example C(nightly-).
        type: str
        required: true
      keep:
        description: Keep the newest this many available snapshots (by creation time, then name), at least 1.
        type: int
      max_age:
        description:
          - Keep the snapshots younger than this; prune older ones. A number with a unit C(s), C(m), C(h), C(d)
            or C(w) (seconds, minutes, hours, days, weeks), or several such parts, for example C(7d), C(36h),
            C(1w3d).
        type: str
  group:
    description:
      - Take (or with O(state=absent) delete) a group snapshot of O(volumes) named this, one snapshot per volume
        named C(<group>/<volume name>), each carrying the group's name (C(group) in
        M(blockstore.storage.storage_snapshot_info)). Volumes can be made from each member as from any snapshot.
      - The members are taken one after the other, so the group is consistent (all at one point in time) only
        while nothing writes to the volumes. A volume attached read-write is refused, and so is a V(qcow2) image a
        local daemon holds open; detach it, or attach it read-only, first. A point-in-time snapshot of volumes in
        use (an rbd group snapshot, a QMP transaction across qemu-storage-daemons) is not implemented yet.
      - A group snapshot keeps the volumes it was taken of; listing other volumes is refused. If a task taking it
        failed half way, the next run finishes members left C(creating); one whose create failed and was undone
        makes the next run refuse, until the group is deleted and taken again.
      - "With O(state=absent): deletes every member (O(volumes) is not needed). Not with O(name), O(id), O(volume)
        or O(retention)."
    type: str
  volumes:
    description: Names or ids of the volumes of the group snapshot O(group), all of this backend. Required with
      O(group) and O(state=present).
    type: list
    elements: str
seealso:
  - module: blockstore.storage.storage_volume
  - module: blockstore.storage.storage_snapshot_info
'''

EXAMPLES = r'''
- name: A volume
  blockstore.storage.storage_volume:
    name: data1
    size: 10
    backend: {name: lab, driver: file, path: /var/lib/blockstore/lab, format: qcow2}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}

- name: Snapshot it before an upgrade
  blockstore.storage.storage_snapshot:
    volume: data1
    name: before-upgrade
    backend: {name: lab, driver: file, path: /var/lib/blockstore/lab, format: qcow2}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}

- name: Tonight's snapshot; keep the newest 7 nightly ones, but none older than 30 days beyond those 7
  blockstore.storage.storage_snapshot:
    volume: data1
    name: "nightly-{{ now(utc=true, fmt='%Y-%m-%d') }}"
    retention: {prefix: nightly-, keep: 7, max_age: 30d}
    backend: {name: lab, driver: file, path: /var/lib/blockstore/lab, format: qcow2}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}
  register: nightly

- name: Only prune hourly snapshots older than two days (takes none)
  blockstore.storage.storage_snapshot:
    volume: data1
    retention: {prefix: hourly-, max_age: 2d}
    backend: {name: lab, driver: file, path: /var/lib/blockstore/lab, format: qcow2}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}

- name: Second volume, for a group snapshot
  blockstore.storage.storage_volume:
    name: logs1
    size: 1
    backend: {name: lab, driver: file, path: /var/lib/blockstore/lab, format: qcow2}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}

- name: Snapshot data1 and logs1 together (neither attached read-write) as before-upgrade/data1, /logs1
  blockstore.storage.storage_snapshot:
    group: before-upgrade
    volumes: [data1, logs1]
    backend: {name: lab, driver: file, path: /var/lib/blockstore/lab, format: qcow2}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}

- name: Delete last month's group snapshot, every member (nothing to do once it is gone)
  blockstore.storage.storage_snapshot:
    group: before-last-upgrade
    state: absent
    backend: {name: lab, driver: file, path: /var/lib/blockstore/lab, format: qcow2}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}

- name: Delete the snapshot of the last upgrade (nothing to do once it is gone)
  blockstore.storage.storage_snapshot:
    name: before-last-upgrade
    state: absent
    backend: {name: lab, driver: file, path: /var/lib/blockstore/lab, format: qcow2}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}
'''

RETURN = r'''
snapshot:
  description: The snapshot after the task; after a delete, the deleted snapshot with status C(deleted).
  returned: success, except when deleting a snapshot that did not exist
  type: dict
  contains:
    id: {description: The snapshot's id., type: str, returned: always}
    name: {description: The snapshot's name., type: str, returned: always}
    volume_id: {description: Id of the volume it was taken of., type: str, returned: always}
    volume_size: {description: Size in GiB of the volume when the snapshot was taken., type: int, returned: always}
    status: {description: "creating, available, deleting, error, error_deleting or deleted.", type: str,
             returned: always}
    backend: {description: Backend name., type: str, returned: always}
    description: {description: Free text., type: str, returned: always}
    metadata: {description: Key/value pairs., type: dict, returned: always}
    created_at: {description: ISO 8601 time of creation., type: str, returned: always}
    updated_at: {description: ISO 8601 time of the last change., type: str, returned: always}
    group: {description: "Name of the group snapshot it is a member of, C('') for none.", type: str,
            returned: always}
group_snapshot:
  description: With O(group), the group snapshot after the task; after a delete, as it was, with status C(deleted).
  returned: when O(group) is given, except when deleting a group snapshot that did not exist
  type: dict
  contains:
    name: {description: The group snapshot's name., type: str, returned: always}
    volumes: {description: Names of its volumes., type: list, elements: str, returned: always}
    snapshots: {description: "Its member snapshots, each as RV(snapshot).", type: list, elements: dict,
                returned: always}
pruned:
  description: The snapshots retention deleted, or in check mode would delete, with the reason.
  returned: when O(retention) is given
  type: list
  elements: dict
  contains:
    id: {description: The snapshot's id., type: str, returned: always}
    name: {description: The snapshot's name., type: str, returned: always}
    created_at: {description: ISO 8601 time of its creation., type: str, returned: always}
    reason: {description: "Why, for example C(not one of the newest 7 and older than 30d).", type: str,
             returned: always}
kept:
  description: The snapshots whose names start with O(retention.prefix) that retention kept, with the reason.
  returned: when O(retention) is given
  type: list
  elements: dict
  contains:
    id: {description: The snapshot's id., type: str, returned: always}
    name: {description: The snapshot's name., type: str, returned: always}
    created_at: {description: ISO 8601 time of its creation., type: str, returned: always}
    reason: {description: "Why, for example C(one of the newest 7) or C(volume(s) 'db2' made from it share its
                          data (delete or flatten them first)).", type: str, returned: always}
actions:
  description: What the task did, or in check mode would do, in order.
  returned: always
  type: list
  elements: str
'''

from ansible_collections.blockstore.storage.plugins.module_utils.plan import STATES
from ansible_collections.blockstore.storage.plugins.module_utils.runner import run_module
from ansible_collections.blockstore.storage.plugins.module_utils.snapshots import SnapshotResource

ARGUMENT_SPEC = {
    "volume": {"type": "str"},
    "name": {"type": "str"},
    "id": {"type": "str"},
    "state": {"type": "str", "choices": list(STATES), "default": "present"},
    "description": {"type": "str"},
    "metadata": {"type": "dict"},
    "group": {"type": "str"},
    "volumes": {"type": "list", "elements": "str"},
    "retention": {"type": "dict", "options": {
        "prefix": {"type": "str", "required": True},
        "keep": {"type": "int"},
        "max_age": {"type": "str"},
    }},
}
HANDLER = SnapshotResource


def main() -> None:
    run_module(HANDLER, ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
