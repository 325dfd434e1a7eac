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
}
HANDLER = SnapshotResource


def main() -> None:
    run_module(HANDLER, ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
